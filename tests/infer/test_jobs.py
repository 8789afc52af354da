import json
import os
import subprocess
import sys

import pytest

from criticlab.errors import ConfigError, InputError
from criticlab.infer.jobs import RefineConfig, SelectConfig, run_refine
from tests.conftest import ROOT

SLIPPED = [
    {"id": "a", "problem": "Natalia sold clips to 48 friends in April and half as many in May. "
     "How many in all?", "reference_answer": "72",
     "steps": ["Natalia sold 48/2 = <<48/2=24>>24 clips in May.",
               "Natalia sold 48+24 = <<48+24=70>>70 clips altogether."], "final_answer": "70"},
    {"id": "b", "problem": "Weng earns $12 an hour. She worked 50 minutes. How much did she earn?",
     "reference_answer": "10",
     "steps": ["Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.",
               "Working 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10."],
     "final_answer": "10"},
]


def test_repair_raises_accuracy_with_no_model(tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps(SLIPPED))
    m = run_refine(RefineConfig(data=str(data), out=tmp_path / "run", critic="arithmetic",
                                strategy="repair", rounds=2))
    assert m["accuracy_by_round"] == [50.0, 100.0]  # the second round was never needed
    t = m["transitions"]
    assert (t["c->c"], t["i->c"], t["c->i"], t["i->i"]) == (1, 1, 0, 0)
    assert t["CL"] == 1.0 and t["CS"] == 1.0 and abs(t["identity_gap"]) < 1e-12
    assert m["this_run"]["engine_calls"] == 0 and m["complete"]
    rows = [json.loads(x) for x in (tmp_path / "run" / "trajectories.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in rows[0]["rounds"]] == ["draft", "repair"]
    assert rows[0]["rounds"][1]["solution"]["final_answer"] == "72"
    # resumable: a rerun reads every trajectory back
    again = run_refine(RefineConfig(data=str(data), out=tmp_path / "run", critic="arithmetic",
                                    strategy="repair", rounds=2))
    assert again["accuracy_by_round"] == m["accuracy_by_round"]


def test_mctsr_search_with_repair_expansions_and_no_model(tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps(SLIPPED))
    m = run_refine(RefineConfig(data=str(data), out=tmp_path / "run", critic="arithmetic",
                                strategy="mctsr", expand="repair", budget=3))
    assert m["accuracy_by_round"] == [50.0, 100.0] and m["strategy"] == "mctsr"
    assert m["this_run"]["engine_calls"] == 0 and m["complete"]
    rows = [json.loads(x) for x in (tmp_path / "run" / "trajectories.jsonl").read_text().splitlines()]
    # the slipped draft is beaten by its repair; the right draft stays alone
    assert [[r["kind"] for r in row["rounds"]] for row in rows] == [["draft", "mctsr"], ["draft"]]
    assert rows[0]["rounds"][1]["solution"]["final_answer"] == "72"


def test_refine_needs_reference_answers(tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"problem": "q", "steps": ["1 + 1 = 2"]}]))
    with pytest.raises(InputError, match="no reference answer"):
        run_refine(RefineConfig(data=str(data), out=tmp_path / "r", strategy="repair"))


def test_config_checks():
    with pytest.raises(ConfigError, match="unknown strategy"):
        RefineConfig(data="x", out=ROOT, strategy="magic")
    with pytest.raises(ConfigError, match="unknown --expand 'best'"):
        RefineConfig(data="x", out=ROOT, strategy="mctsr", expand="best")
    with pytest.raises(ConfigError, match="--budget must be at least 0"):
        RefineConfig(data="x", out=ROOT, strategy="mcnest", budget=-1)
    with pytest.raises(ConfigError, match="needs a --critic"):
        SelectConfig(data="x", out=ROOT, method="filtered")


def _cli(*args, tmp_path):
    env = {**os.environ, "COLUMNS": "200", "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "criticlab", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=900)


@pytest.mark.slow
def test_refine_and_select_end_to_end_on_the_embedded_model(tmp_path, embedded_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps(SLIPPED))
    p = _cli("refine", str(data), "--critic", "stepwise", "--strategy", "global", "--rounds",
             "1", "--draft", "solve", "--max-tokens", "48", "--out", str(tmp_path / "r"),
             tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["n"] == 2 and m["complete"] and m["this_run"]["engine_calls"] >= 4
    assert len(m["accuracy_by_round"]) in (1, 2) and m["usage"]["completion_tokens"] > 0
    t = _cli("refine", str(data), "--critic", "stepwise", "--strategy", "mctsr", "--budget", "3",
             "--draft", "solve", "--max-tokens", "48", "--out", str(tmp_path / "t"),
             tmp_path=tmp_path)
    assert t.returncode == 0, t.stderr
    tm = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert tm["n"] == 2 and tm["complete"] and tm["strategy"] == "mctsr"
    # per problem: a draft, its critique, then one expansion (refine + critique) fits in 3
    assert tm["this_run"]["engine_calls"] == 2 * 4
    s = _cli("select", str(data), "--n", "2", "--method", "filtered", "--critic", "arithmetic",
             "--max-tokens", "48", "--out", str(tmp_path / "s"), tmp_path=tmp_path)
    assert s.returncode == 0, s.stderr
    sm = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert sm["n"] == 2 and sm["samples"] == 2 and sm["usage"]["completion_tokens"] > 0
    rows = [json.loads(x) for x in (tmp_path / "s" / "selections.jsonl").read_text().splitlines()]
    assert all(len(r["solutions"]) == 2 for r in rows)
