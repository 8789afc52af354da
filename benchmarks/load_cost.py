"""Load cost of a records file: a JSON array against the same records as JSONL.

Writes N ProcessBench-like records (a problem, six steps, a label) as a pretty-printed JSON
array (one record spans several lines, as in the ProcessBench files) and as JSONL, and times
``read_examples`` on each (best of ``--repeat``), for each N, in one run. Linear loading shows
as each time growing like N (x1, x2, x4 for 10k, 20k, 40k) and a steady array/JSONL ratio.

    python benchmarks/load_cost.py [--sizes 10000 20000 40000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from criticlab.data.jsonl import read_examples
from criticlab.types import Example


def records(n: int) -> list[dict[str, object]]:
    out = []
    for i in range(n):
        a, b = 3 + i % 97, 4 + i % 89
        out.append({
            "id": f"r{i}",
            "generator": "synthetic",
            "problem": f"Tom has {a} bags with {b} apples in each bag. He gives away {a} apples "
                       "and buys twice as many as he has left. How many apples does he have "
                       "now? Explain each step of the computation." * 2,
            "steps": [f"Tom starts with {a} * {b} = {a * b} apples.",
                      f"He gives away {a}, so {a * b} - {a} = {a * b - a} are left.",
                      f"He buys twice as many: 2 * {a * b - a} = {2 * (a * b - a)}.",
                      f"Now he has {a * b - a} + {2 * (a * b - a)} = {3 * (a * b - a)}.",
                      "Checking: the numbers add up, each operation is in the right order.",
                      f"The answer is {3 * (a * b - a)}."],
            "label": -1 if i % 3 else i % 6,
            "final_answer_correct": bool(i % 3),
        })
    return out


def load_time(path: Path, repeat: int, n: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        items = list(read_examples(str(path)))
        best = min(best, time.perf_counter() - t)
        assert len(items) == n and all(isinstance(x, Example) for x in items), path
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 40_000])
    ap.add_argument("--repeat", type=int, default=3, help="best of this many loads")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            recs = records(n)
            arr, lines = Path(tmp) / f"r{n}.json", Path(tmp) / f"r{n}.jsonl"
            arr.write_text(json.dumps(recs, indent=2), encoding="utf-8")
            lines.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
            rows.append((n, arr.stat().st_size, load_time(arr, args.repeat, n),
                         load_time(lines, args.repeat, n)))
    n0, _, a0, j0 = rows[0]
    print(f"{'records':>8} {'array MB':>9} {'array s':>8} {'growth':>7} {'JSONL s':>8} "
          f"{'growth':>7} {'array/JSONL':>11}   (growth: time / time at {n0:,}; "
          f"records x{rows[-1][0] / n0:g} at most)")
    for n, size, a, j in rows:
        print(f"{n:>8,} {size / 1e6:>9.1f} {a:>8.2f} {f'x{a / a0:.2f}':>7} {j:>8.2f} "
              f"{f'x{j / j0:.2f}':>7} {a / j:>11.2f}   (records x{n / n0:g})")


if __name__ == "__main__":
    main()
