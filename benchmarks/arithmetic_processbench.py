"""How often the arithmetic verifier flags ProcessBench solutions, and how often wrongly.

Usage: python benchmarks/arithmetic_processbench.py [--data PATH] [--show-false-alarms]

Prints the record counts, how many erroneous records are flagged (and how many exactly at
the gold first error, or before it), and the false alarms: correct records (label -1) that
the verifier flags. It measures, it does not assert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from _verifiers import tally

from criticlab.critics.arithmetic import ArithmeticCritic
from criticlab.types import Critique, Problem, Solution

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "processbench" / "gsm8k.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help=f"ProcessBench JSON array (default: {DEFAULT_DATA})")
    ap.add_argument("--show-false-alarms", action="store_true",
                    help="print each false alarm's step and explanation")
    ap.add_argument("--show-flags", action="store_true",
                    help="print every flag on erroneous records too")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"error: data file not found: {args.data} (pass --data PATH)", file=sys.stderr)
        return 2
    records = json.loads(args.data.read_text(encoding="utf-8"))
    critic = ArithmeticCritic()

    async def run_all() -> list[Critique]:
        out = []
        for r in records:
            problem = Problem(id=str(r.get("id", "")), question=r["problem"])
            out.append(await critic.critique(problem, Solution(tuple(r["steps"]))))
        return out

    critiques = asyncio.run(run_all())
    t = tally(records, critiques, show_flags=args.show_flags,
              show_false_alarms=args.show_false_alarms)
    n_err, n_cor, flagged, exact = t.n_err, t.n_cor, t.flagged, t.exact
    early, late, false_alarms = t.early, t.late, t.false_alarms
    no_claim = sum(1 for c in critiques if c.verdict is None)

    def pct(a: int, b: int) -> str:
        return f"{100 * a / b:5.1f}%" if b else "    -"

    rows = [
        ("records", len(records), ""),
        ("erroneous (label >= 0)", n_err, ""),
        ("correct (label -1)", n_cor, ""),
        ("no checkable claim (verdict None)", no_claim, pct(no_claim, len(records))),
        ("erroneous flagged", flagged, pct(flagged, n_err)),
        ("  flagged exactly at gold first error", exact, pct(exact, n_err)),
        ("  flagged before gold first error", early, pct(early, n_err)),
        ("  flagged after gold first error", late, pct(late, n_err)),
        ("false alarms on correct records", false_alarms, pct(false_alarms, n_cor)),
    ]
    print(f"arithmetic verifier on {args.data}")
    for name, value, share in rows:
        print(f"  {name:<40} {value:>5}  {share}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
