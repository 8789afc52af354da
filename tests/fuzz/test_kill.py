"""eval survives SIGKILL at random moments: rerun, it ends with one result per item, no corrupt
line, and the metrics of an uninterrupted run (``benchmarks/kill_resume.py`` does it 50 times).
A damaged run directory (a page of the store, a torn WAL, a cut results.jsonl) loses no
result that results.jsonl held: the rerun refuses in one line, ``criticlab repair`` puts
them back (``benchmarks/kill_resume.py --damage`` does it 50 times)."""

import os
import random

import pytest

from tests.fuzz.damaging import KINDS, damage_trial
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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("damage")
    data = tmp / "items.jsonl"
    ids = write_items(data, 2000, seed=4)
    env = {**os.environ, "CRITICLAB_STORE": str(tmp / "s.sqlite")}
    return str(data), ids, tmp / "reference", run_to_end(str(data), tmp / "reference", env), env


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_run_loses_no_result_its_files_held(kind, finished_run, tmp_path):
    data, ids, ref_dir, reference, env = finished_run
    t = damage_trial(kind, data, ids, ref_dir, reference, tmp_path / "run", env,
                     random.Random(11))
    assert t.ok, t
    assert t.rows == 2000 and t.lost == 0 and t.held == (1000 if kind == "wal" else 2000)
    if kind == "page":  # a whole page of random bytes is always found
        assert t.refused and "damaged" in t.refused[0] and t.repaired, t
    if kind == "results":  # the store holds everything: the rerun writes the file whole
        assert not t.refused and not t.repaired
    if kind == "wal":
        assert t.what.startswith("WAL "), t.what
