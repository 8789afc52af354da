"""``eval`` killed with SIGKILL at random moments, then rerun: after each trial the run
directory must hold exactly one result per item, no corrupt line, and the metrics of a run
never interrupted. Each trial kills a fresh run 1-3 times at random moments within the
uninterrupted run's duration, then reruns it to the end. Prints each trial and the counts.

    python benchmarks/kill_resume.py [--trials 50] [--items 5000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.killing import run_to_end, trial, write_items  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        data = tmp / "items.jsonl"
        ids = write_items(data, args.items, args.seed)
        env = {**os.environ, "CRITICLAB_STORE": str(tmp / "s.sqlite")}
        t = time.perf_counter()
        reference = run_to_end(str(data), tmp / "reference", env)
        span = time.perf_counter() - t
        print(f"{args.items} items, the uninterrupted run took {span:.1f} s; killing at "
              f"0-{span:.1f} s")
        failed = kills = 0
        partial = []
        for i in range(args.trials):
            moments = [rng.uniform(0.0, span) for _ in range(rng.randint(1, 3))]
            r = trial(str(data), ids, tmp / f"run{i}", reference, env, moments)
            kills += len(r.kills)
            partial += r.kills
            failed += not r.ok
            print(f"  trial {i + 1:2d}: killed with {r.kills} items stored; then {r.rows} rows, "
                  f"{r.duplicates} duplicated, {r.corrupt} corrupt, {r.missing} missing, "
                  f"metrics {'equal' if r.same_metrics else 'DIFFERENT'}", flush=True)
    print(f"\n{args.trials} trials, {kills} kills (items stored at a kill: "
          f"{min(partial)}-{max(partial)} of {args.items}); failed trials: {failed}")


if __name__ == "__main__":
    main()
