"""What hostile input costs the parsers: step splitting and the arithmetic verifier.

Usage: python benchmarks/parse_cost.py [--scale 1.0] [--timeout 60] [--no-bound]

1. For each adversarial input family, the time of one parse at sizes x1, x2 and x4 side by
   side with the ratios: linear growth shows as ratios near 2 (a quadratic cost shows 4, an
   exponential one a timeout). Step splitting is ``split_steps``; the verifier is timed through
   ``check_claims``, which reads the whole text, so the parse itself is measured at sizes
   past the verifier's step bound.
2. The critic's own path (``check_step``) on a 10 MB step of each verifier family: it stops
   at ``MAX_STEP_CHARS`` and says so (``--no-bound`` skips this part).

Each measurement runs in a fresh interpreter under ``--timeout`` seconds (a backtracking regex
cannot be interrupted), best of three when a run takes under a second. ``--scale`` multiplies
every size (e.g. ``--scale 0.00002`` to see the old exponential splitter finish at all). It
measures, it does not assert.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (family, the text as a Python expression of n, n at x1, the function timed)
FAMILIES = [
    ('"*" * n (a solution)', '"*" * n', 4_000_000, "split_steps"),
    ('"#" * n + " " + "_" * n', '"#" * n + " " + "_" * n', 2_000_000, "split_steps"),
    ('"carry " * n (a step)', '"carry " * n', 20_000, "check_claims"),
    ('"\\frac{" * n', '"\\\\frac{" * n', 20_000, "check_claims"),
    ('"1+1=2 " * n', '"1+1=2 " * n', 10_000, "check_claims"),
    ('" " * n + "x"', '" " * n + "x"', 400_000, "check_claims"),
    ('"(" * n + "1 + 1 = 2"', '"(" * n + "1 + 1 = 2"', 50_000, "check_claims"),
]
TEN_MB = 10_000_000

_CHILD = """
import sys, time
from criticlab.steps import split_steps
from criticlab.critics.arithmetic import check_claims, check_step
n = int(sys.argv[1])
text = {expr}
best = None
for _ in range(3):
    t = time.perf_counter()
    out = {func}(text)
    took = time.perf_counter() - t
    best = took if best is None else min(best, took)
    if took > 1.0:
        break
print(best)
print(len(text))
print(getattr(out, "explanation", "")[:160])
"""


def measure(expr: str, func: str, n: int, timeout: float) -> tuple[float | None, int, str]:
    """(seconds or None on a timeout, characters, the explanation when ``func`` gives one)."""
    code = _CHILD.format(expr=expr, func=func)
    try:
        done = subprocess.run([sys.executable, "-c", code, str(n)], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, -1, ""
    if done.returncode != 0:
        raise SystemExit(f"{func} failed on {expr} (n={n}):\n{done.stderr[-2000:]}")
    took, chars, why = [*done.stdout.split("\n"), "", "", ""][:3]
    return float(took), int(chars), why


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size (default 1)")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds one measurement may take (default 60)")
    ap.add_argument("--no-bound", action="store_true", help="skip part 2 (the 10 MB steps)")
    args = ap.parse_args(argv)

    def cell(t: float | None) -> str:
        return f"{'> ' + format(args.timeout, 'g'):>9}" if t is None else f"{t:9.4f}"

    def ratio(a: float | None, b: float | None) -> str:
        return f"{b / a:7.1f}" if a and b else f"{'-':>7}"

    print("1. one parse, seconds at sizes x1, x2, x4 (linear: ratios near 2)\n")
    print(f"{'family':28} {'function':13} {'chars at x1':>12} {'x1':>9} {'x2':>9} {'x4':>9} "
          f"{'x2/x1':>7} {'x4/x2':>7}")
    for name, expr, n, func in FAMILIES:
        n = max(1, round(n * args.scale))
        times: list[float | None] = []
        for k in (1, 2, 4):
            # after a timeout the larger sizes would only time out too
            t, _, _ = (None, -1, "") if times and times[-1] is None else measure(
                expr, func, n * k, args.timeout)
            times.append(t)
        chars = len(eval(expr, {"n": n}))
        print(f"{name:28} {func:13} {chars:>12,} "
              f"{''.join(cell(t) for t in times)} {ratio(times[0], times[1])} "
              f"{ratio(times[1], times[2])}")

    if args.no_bound:
        return 0
    print(f"\n2. the critic's path (check_step) on a step of about {TEN_MB:,} characters\n")
    for name, expr, _, func in FAMILIES:
        if func != "check_claims":
            continue
        unit = len(eval(expr, {"n": 2})) - len(eval(expr, {"n": 1}))  # the repeated piece
        t, chars, why = measure(expr, "check_step", TEN_MB // unit, args.timeout)
        print(f"{name:28} {cell(t)} s  {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
