"""The model-free verifiers on ProcessBench: arithmetic, symbolic and both ("verifiers").

Usage: python benchmarks/symbolic_processbench.py [--data DIR] [--limit N] [--subsets gsm8k,math]
       [--critics arithmetic,symbolic,verifiers] [--show-false-alarms] [--show-flags]

For each subset and critic, side by side: erroneous items flagged, flagged exactly at the gold
first error / before it / after it, false alarms on correct solutions (count and %), acc_err
(ProcessBench's accuracy on erroneous items: the first error found exactly), items/s, and
the CPU seconds the critic used (this process and the SymPy worker together, so the figure
holds for one core even when other work shares the machine) with items per CPU second.
It measures, it does not assert. The symbolic verifier runs SymPy in one worker process; each
critic is timed from a fresh worker (started before the clock), as in a new process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

from _verifiers import tally

from criticlab.critics.base import Critic
from criticlab.types import Critique, Problem, Solution

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "processbench"


def _critic(name: str) -> Critic:
    if name == "arithmetic":
        from criticlab.critics.arithmetic import ArithmeticCritic

        return ArithmeticCritic()
    from criticlab.critics.symbolic import SymbolicCritic, VerifiersCritic

    return SymbolicCritic() if name == "symbolic" else VerifiersCritic()


def _cpu() -> float:
    """CPU seconds used so far by this process and its children: the SymPy workers that ended
    (killed after a timeout, or stopped) and, on Linux, those still running."""
    from criticlab.critics import symbolic

    total = time.process_time()
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    total += ended.ru_utime + ended.ru_stime
    for pool in symbolic._POOLS.values():
        for w in pool.all:
            if w.proc is None:
                continue
            try:
                fields = Path(f"/proc/{w.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _fresh_workers() -> None:
    """Stop the SymPy workers, so that each critic is timed from a fresh worker (empty parse
    cache, cold parser) as a new process would be; the next claim starts one."""
    from criticlab.critics import symbolic

    for pool in symbolic._POOLS.values():
        pool.close()


def _run(critic: Critic, records: list[dict[str, object]]
         ) -> tuple[list[Critique], float, float]:
    async def run_all() -> list[Critique]:
        out = []
        for r in records:
            steps = r["steps"]
            assert isinstance(steps, list)
            problem = Problem(id=str(r.get("id", "")), question=str(r["problem"]))
            out.append(await critic.critique(problem, Solution(tuple(str(s) for s in steps))))
        return out

    t, cpu = time.perf_counter(), _cpu()
    crits = asyncio.run(run_all())
    return crits, time.perf_counter() - t, _cpu() - cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help=f"folder with gsm8k.json and math.json (default: {DEFAULT_DATA})")
    ap.add_argument("--limit", type=int, default=None, help="first N records of each subset")
    ap.add_argument("--subsets", default="gsm8k,math")
    ap.add_argument("--critics", default="arithmetic,symbolic,verifiers")
    ap.add_argument("--show-false-alarms", action="store_true")
    ap.add_argument("--show-flags", action="store_true", help="every flag on erroneous items")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: data folder not found: {args.data} (pass --data DIR)", file=sys.stderr)
        return 2
    names = [n for n in args.critics.split(",") if n]
    header = (f"{'subset':<7} {'critic':<11} {'items':>5} {'err':>4} {'flagged':>8} "
              f"{'exact':>6} {'before':>6} {'after':>6} {'acc_err':>8} {'false alarms':>15} "
              f"{'items/s':>8} {'CPU s':>6} {'items/CPU s':>11}")
    lines = []
    for subset in [s for s in args.subsets.split(",") if s]:
        path = args.data / f"{subset}.json"
        if not path.is_file():
            print(f"skipping {subset}: {path} not found", file=sys.stderr)
            continue
        records = json.loads(path.read_text(encoding="utf-8"))[: args.limit]
        for name in names:
            critic = _critic(name)
            if name != "arithmetic":  # a fresh SymPy worker, started outside the timing
                _fresh_workers()
                _run(critic, [{"problem": "", "steps": ["$1 + 1 = 2$"], "label": -1}])
            crits, secs, cpu = _run(critic, records)
            t = tally(records, crits, tag=name, show_flags=args.show_flags,
                      show_false_alarms=args.show_false_alarms)
            n_err, n_cor, flagged, exact = t.n_err, t.n_cor, t.flagged, t.exact
            early, late, fa = t.early, t.late, t.false_alarms
            acc = 100 * exact / n_err if n_err else 0.0
            fa_pct = 100 * fa / n_cor if n_cor else 0.0
            lines.append(f"{subset:<7} {name:<11} {len(records):>5} {n_err:>4} {flagged:>8} "
                         f"{exact:>6} {early:>6} {late:>6} {acc:>7.1f}% {fa:>6} ({fa_pct:4.1f}%)"
                         f"   {len(records) / secs:>8.1f} {cpu:>6.1f} {len(records) / cpu:>11.1f}")
    print(header)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
