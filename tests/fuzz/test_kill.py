"""eval survives SIGKILL at random moments: rerun, it ends with one result per item, no corrupt
line, and the metrics of an uninterrupted run (``benchmarks/kill_resume.py`` does it 50 times)."""

import os
import random

from tests.fuzz.killing import run_to_end, trial, write_items


def test_eval_killed_three_times_then_rerun_loses_and_repeats_nothing(tmp_path):
    data = tmp_path / "items.jsonl"
    ids = write_items(data, 3000)
    env = {**os.environ, "CRITICLAB_STORE": str(tmp_path / "s.sqlite")}
    reference = run_to_end(str(data), tmp_path / "reference", env)
    assert reference["n"] == 3000
    rng = random.Random(7)
    t = trial(str(data), ids, tmp_path / "run", reference, env,
              [rng.uniform(1.0, 4.0) for _ in range(3)])
    assert t.ok, t
    assert t.rows == 3000 and len(t.kills) == 3
