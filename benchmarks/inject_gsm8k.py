"""Error injection over GSM8K test, checked by the arithmetic verifier.

Usage: python benchmarks/inject_gsm8k.py [--data PATH] [--per-problem K] [--seed N]
                                         [--out FILE] [--show N]

Injects errors into every GSM8K reference solution (by default one of each of the five
types per problem), then runs the exact arithmetic verifier on every record and prints, per
error type: how often the verifier's first error is the injected step, how often it flags
another step first, how often it flags nothing, how often it flags a step after the label
(an inconsistency the recomputation left), and whether every record's steps before the
label are the reference's. A calculation slip must be found at the injected step; the
other types keep each step's arithmetic right, so the verifier is expected not to flag
them. It measures, it does not assert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from criticlab.critics.arithmetic import ArithmeticCritic
from criticlab.label.inject import ERROR_TYPES, InjectConfig, inject
from criticlab.types import Critique, Problem, Solution

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"


def expected_prefix(rec: dict[str, Any], reference: list[str]) -> list[str]:
    """The steps before the label as they must read: the reference's, minus a dropped step."""
    steps = list(reference)
    inj = rec["injection"] or {}
    if rec["error_type"] == "dropped_step":
        del steps[inj["step"]]
    return steps[: rec["label"]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help=f"GSM8K JSONL (default: {DEFAULT_DATA})")
    ap.add_argument("--per-problem", type=int, default=len(ERROR_TYPES),
                    help="erroneous records per problem (default: one per error type)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="keep the records in this .json/.jsonl file")
    ap.add_argument("--show", type=int, default=5,
                    help="print up to N records per type where the verifier disagrees")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"error: GSM8K data not found: {args.data} (pass --data PATH)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "injected.json"
        t0 = time.perf_counter()
        stats = inject(InjectConfig(str(args.data), out, per_problem=args.per_problem,
                                    seed=args.seed))
        took = time.perf_counter() - t0
        text = out.read_text(encoding="utf-8")
    records = (json.loads(text) if text.lstrip().startswith("[")
               else [json.loads(x) for x in text.splitlines() if x.strip()])
    print(f"injected {stats.records} records from {stats.problems} problems in {took:.1f} s "
          f"({stats.skipped} problems skipped: reference not known to be right)")
    print(f"\n{'error type':<16}{'attempted':>10}{'written':>9}{'same answer':>13}"
          f"{'not applicable':>16}")
    for t, s in stats.by_type.items():
        print(f"{t:<16}{s.attempted:>10}{s.written:>9}{s.same_answer:>13}{s.not_applicable:>16}")

    critic = ArithmeticCritic()

    async def run_all() -> list[Critique]:
        return [await critic.critique(Problem(r["id"], r["problem"]), Solution(r["steps"]))
                for r in records]

    critiques = asyncio.run(run_all())
    reference = {r["source_id"]: r["steps"] for r in records if r["label"] == -1}
    table: dict[str, Counter[str]] = defaultdict(Counter)
    shown: Counter[str] = Counter()
    for r, c in zip(records, critiques, strict=True):
        t = r["error_type"] or "(correct, -1)"
        row = table[t]
        row["records"] += 1
        label = r["label"]
        first = c.first_error
        if label == -1:
            row["exact" if first is None else "elsewhere"] += 1
            continue
        if first == label:
            row["exact"] += 1
        elif first is None:
            row["none"] += 1
        else:
            row["elsewhere"] += 1
        if any(s.verdict == "incorrect" and s.index > label for s in c.steps):
            row["later"] += 1
        ok = r["steps"][:label] == expected_prefix(r, reference[r["source_id"]])
        row["prefix"] += ok
        disagree = (first != label) if t == "calculation" else (first is not None)
        if (disagree or not ok) and shown[t] < args.show:
            shown[t] += 1
            why = c.steps[first if first is not None else label].explanation
            at = r["steps"][label] if first is None else r["steps"][first]
            print(f"\n  [{t}] {r['id']} label {label}, verifier {first}: {why}\n    {at}")

    def pct(a: int, b: int) -> str:
        return f"{a:>5} {100 * a / b:5.1f}%" if b else f"{a:>5}    - "

    print("\nArithmetic verifier on the injected records (first error vs label; for the "
          "untouched\nsolutions 'at label' means nothing flagged):")
    print(f"{'error type':<16}{'records':>8}{'first error = label':>21}{'flagged elsewhere':>19}"
          f"{'not flagged':>19}{'later step flagged':>20}{'prefix unchanged':>19}")
    for t in (*ERROR_TYPES, "(correct, -1)"):
        row = table.get(t)
        if not row:
            continue
        n = row["records"]
        erroneous = t != "(correct, -1)"
        print(f"{t:<16}{n:>8}{pct(row['exact'], n):>21}{pct(row['elsewhere'], n):>19}"
              f"{pct(row['none'], n) if erroneous else '':>19}"
              f"{pct(row['later'], n) if erroneous else '':>20}"
              f"{pct(row['prefix'], n) if erroneous else '':>19}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
