"""How many ProcessBench items per second the arithmetic verifier judges (the RL-reward path).

Usage: python benchmarks/verifier_speed.py [--data DIR] [--repeat 3] [--profile]
                                           [--baseline DIR] [--limit N]

For ProcessBench-GSM8K and -MATH it times ``ArithmeticCritic().critique`` on every record,
one core, all awaited inside one event loop (so ``asyncio.run`` start-up is not counted),
and prints items/s (best of ``--repeat`` passes; the first pass is cold: no cache is warm).
With ``--profile`` it prints cProfile's top 15 functions by cumulative time for one pass
over both files. With ``--baseline DIR`` (a folder holding another version of
``arithmetic.py``, ``arith_claims.py``, ``arith_parse.py`` and ``arith_text.py``, e.g. a
copy taken before a change) that version is timed in the same run, interleaved, its figures
side by side with the current ones, and every critique of the two is compared. It measures,
it does not assert.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import io
import json
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from criticlab.types import Problem, Solution

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "processbench"
FILES = ("gsm8k", "math")
_OWN = r"^(?!.*(?:asyncio|verifier_speed|_contextvars|cProfile))"
_MODULES = ("arith_text", "arith_parse", "arith_claims", "arithmetic")


def load_baseline(folder: Path) -> ModuleType:
    """Import another version of the verifier's four modules as a private package."""
    pkg = Path(tempfile.mkdtemp(prefix="verifier_baseline_")) / "criticlab_verifier_baseline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    for name in _MODULES:
        src = (folder / f"{name}.py").read_text(encoding="utf-8")
        src = re.sub(r"criticlab\.critics\.(arith\w*)", r"criticlab_verifier_baseline.\1", src)
        (pkg / f"{name}.py").write_text(src, encoding="utf-8")
    sys.path.insert(0, str(pkg.parent))
    return importlib.import_module("criticlab_verifier_baseline.arithmetic")


def clear_caches(module: ModuleType) -> None:
    """Empty every ``functools`` cache of the verifier's modules, so a pass starts cold."""
    pkg = module.__name__.rsplit(".", 1)[0]
    for name in _MODULES:
        mod = sys.modules.get(f"{pkg}.{name}")
        for obj in vars(mod).values() if mod is not None else ():
            if callable(getattr(obj, "cache_clear", None)):
                obj.cache_clear()


def run_pass(module: ModuleType, work: list[tuple[Problem, Solution]]) -> tuple[float, list[Any]]:
    critic = module.ArithmeticCritic()

    async def all_items() -> list[Any]:
        return [await critic.critique(p, s) for p, s in work]

    clear_caches(module)
    t = time.perf_counter()
    out = asyncio.run(all_items())
    return time.perf_counter() - t, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help=f"folder with gsm8k.json and math.json (default: {DEFAULT_DATA})")
    ap.add_argument("--repeat", type=int, default=3, help="passes per file (best is shown)")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top 15")
    ap.add_argument("--baseline", type=Path, help="folder with another version to compare")
    ap.add_argument("--limit", type=int, help="only the first N records of each file")
    args = ap.parse_args(argv)

    from criticlab.critics import arithmetic as current

    versions: dict[str, ModuleType] = {"current": current}
    if args.baseline is not None:
        versions = {"baseline": load_baseline(args.baseline), "current": current}
    work: dict[str, list[tuple[Problem, Solution]]] = {}
    for name in FILES:
        path = args.data / f"{name}.json"
        if not path.is_file():
            print(f"error: data file not found: {path} (pass --data DIR)", file=sys.stderr)
            return 2
        recs = json.loads(path.read_text(encoding="utf-8"))[: args.limit]
        work[name] = [(Problem(str(r.get("id", "")), r["problem"]), Solution(tuple(r["steps"])))
                      for r in recs]

    best: dict[tuple[str, str], float] = {}
    first: dict[tuple[str, str], float] = {}
    results: dict[tuple[str, str], list[Any]] = {}
    for rep in range(args.repeat):
        for name in FILES:
            for label, module in versions.items():  # interleaved: noise hits both alike
                took, out = run_pass(module, work[name])
                key = (name, label)
                rate = len(out) / took
                best[key] = max(best.get(key, 0.0), rate)
                if rep == 0:
                    first[key] = rate
                    results[key] = [c.to_dict() for c in out]

    print(f"{'file':<8}{'items':>7}" + "".join(
        f"{label + ' best':>16}{label + ' cold':>16}" for label in versions) + (
        f"{'speed-up':>10}{'same':>7}" if len(versions) == 2 else ""))
    for name in FILES:
        row = f"{name:<8}{len(work[name]):>7}"
        for label in versions:
            row += f"{best[name, label]:>12.0f} /s {first[name, label]:>12.0f} /s"
        if len(versions) == 2:
            row += f"{best[name, 'current'] / best[name, 'baseline']:>9.1f}x"
            row += f"{results[name, 'current'] == results[name, 'baseline']!s:>7}"
        print(row)

    if args.profile:
        for label, module in versions.items():
            prof = cProfile.Profile()
            prof.enable()
            for name in FILES:
                run_pass(module, work[name])
            prof.disable()
            for order in ("cumulative", "tottime"):
                buf = io.StringIO()
                # the event loop's and this script's own frames say nothing: left out
                pstats.Stats(prof, stream=buf).sort_stats(order).print_stats(_OWN, 15)
                print(f"\n== cProfile, {label}, one cold pass over both files, top 15 {order} ==")
                print("\n".join(buf.getvalue().strip().splitlines()[3:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
