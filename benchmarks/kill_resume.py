"""``eval`` killed with SIGKILL at random moments, then rerun: after each trial the run
directory must hold exactly one result per item, no corrupt line, and the metrics of a run
never interrupted. Each trial kills a fresh run 1-3 times at random moments within the
uninterrupted run's duration, then reruns it to the end. Prints each trial and the counts.

Then damage trials (``--damage``, cycling through three damages): random bytes over one
page of a finished run's ``store.sqlite``; a WAL torn after a SIGKILL (cut at a random byte
or its tail overwritten); a finished run's ``results.jsonl`` cut at a random byte. Each is
recovered as a user would: rerun; if it refuses (one line, exit 2), ``criticlab repair``,
then rerun. A result is lost when ``results.jsonl`` held it before the damage and it had to
be computed again; results only the torn WAL frames held are counted apart (dropped).

    python benchmarks/kill_resume.py [--trials 50] [--damage 50] [--items 5000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.damaging import KINDS, Damaged, damage_trial  # noqa: E402
from tests.fuzz.killing import run_to_end, trial, write_items  # noqa: E402


def kill_trials(n: int, data: Path, ids: list[str], tmp: Path, reference: dict,
                env: dict[str, str], span: float, rng: random.Random) -> int:
    failed = kills = 0
    partial: list[int] = []
    for i in range(n):
        moments = [rng.uniform(0.0, span) for _ in range(rng.randint(1, 3))]
        r = trial(str(data), ids, tmp / f"run{i}", reference, env, moments)
        kills += len(r.kills)
        partial += r.kills
        failed += not r.ok
        print(f"  trial {i + 1:2d}: killed with {r.kills} items stored; then {r.rows} rows, "
              f"{r.duplicates} duplicated, {r.corrupt} corrupt, {r.missing} missing, "
              f"metrics {'equal' if r.same_metrics else 'DIFFERENT'}", flush=True)
    if n:
        print(f"\n{n} kill trials, {kills} kills (items stored at a kill: "
              f"{min(partial)}-{max(partial)} of {len(ids)}); failed trials: {failed}\n")
    return failed


def damage_trials(n: int, data: Path, ids: list[str], tmp: Path, reference: dict,
                  env: dict[str, str], rng: random.Random) -> int:
    by_kind: dict[str, list[Damaged]] = defaultdict(list)
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        t = damage_trial(kind, str(data), ids, tmp / "reference", reference,
                         tmp / f"damaged{i}", env, rng)
        by_kind[kind].append(t)
        said = f"refused ({t.refused[0][:60]}...), " if t.refused else ""
        print(f"  damage {i + 1:2d} {kind:7s}: {t.what}; {said}"
              f"{'repaired, ' if t.repaired else ''}{t.lost} of {t.held} lost, "
              f"{t.dropped} dropped with the damage; {t.rows} rows, {t.missing} missing, "
              f"metrics {'equal' if t.same_metrics else 'DIFFERENT'}"
              f"{'' if t.ok else '  FAILED'}", flush=True)
    failed = 0
    print(f"\n{'damage':8s} {'trials':>6s} {'refused':>7s} {'repaired':>8s} {'held':>7s} "
          f"{'lost':>5s} {'dropped':>7s} {'not one line':>12s} {'failed':>6s}")
    for kind in KINDS:
        ts = by_kind[kind]
        failed += sum(not t.ok for t in ts)
        print(f"{kind:8s} {len(ts):6d} {sum(bool(t.refused) for t in ts):7d} "
              f"{sum(t.repaired for t in ts):8d} {sum(t.held for t in ts):7d} "
              f"{sum(t.lost for t in ts):5d} {sum(t.dropped for t in ts):7d} "
              f"{sum(t.bad_refusals for t in ts):12d} {sum(not t.ok for t in ts):6d}")
    total = [t for ts in by_kind.values() for t in ts]
    print(f"\n{n} damage trials: {sum(t.lost for t in total)} results lost of "
          f"{sum(t.held for t in total)} held; failed trials: {failed}")
    return failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50, help="kill trials")
    ap.add_argument("--damage", type=int, default=50, help="damage trials")
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
        failed = kill_trials(args.trials, data, ids, tmp, reference, env, span, rng)
        failed += damage_trials(args.damage, data, ids, tmp, reference, env, rng)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
