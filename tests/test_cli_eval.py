"""`criticlab eval` and `criticlab report` as a user runs them."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED_DATA


def run(*args, tmp_path):
    env = {**os.environ, "COLUMNS": "160", "CRITICLAB_DATA": str(SHARED_DATA),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "criticlab", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=900)


def test_eval_arithmetic_on_processbench_gsm8k(shared_data, tmp_path):
    out = tmp_path / "run"
    p = run("eval", "processbench:gsm8k", "--critic", "arithmetic", "--out", str(out),
            tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    m = json.loads((out / "metrics.json").read_text())
    row = m["processbench"]["gsm8k"]
    assert (row["n"], row["n_err"], row["n_cor"]) == (400, 207, 193)
    assert m["model"] == "none" and m["complete"]
    assert f"{row['f1']:.1f}" in p.stdout and "parse failures" in p.stdout
    assert len((out / "results.jsonl").read_text().splitlines()) == 400
    # the arithmetic verifier never flags a correct ProcessBench solution (measured: 0/193)
    assert row["acc_cor"] > 95.0
    rep = run("report", str(out), tmp_path=tmp_path)
    assert rep.returncode == 0, rep.stderr
    html = (out / "report.html").read_text()
    assert "published" in html and "arithmetic" in html


@pytest.mark.slow
def test_eval_prompted_on_the_embedded_model(shared_data, embedded_path, tmp_path):
    out = tmp_path / "run"
    p = run("eval", "processbench:gsm8k", "--critic", "prompted", "--model", "embedded",
            "--limit", "3", "--max-tokens", "24", "--out", str(out), tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 3 and m["complete"] and m["this_run"]["engine_calls"] == 3
    assert "parse failures" in p.stdout and f"{100 * m['parse_failure_rate']:.1f}%" in p.stdout
    again = run("eval", "processbench:gsm8k", "--critic", "prompted", "--model", "embedded",
                "--limit", "3", "--max-tokens", "24", "--out", str(out), tmp_path=tmp_path)
    assert "3 items (3 resumed)" in again.stderr and "model calls: 0" in again.stderr


@pytest.mark.parametrize("args,needle", [
    (["eval", "nosuchbench"], "unknown benchmark"),
    (["eval", "processbench:gsm8k", "--critic", "oracle"], "unknown critic 'oracle'"),
    (["eval", "processbench:gsm8k", "--limit", "0"], "--limit must be at least 1"),
    (["eval", "processbench:gsm8k", "--executor", "slurm"], "unknown executor 'slurm'"),
    (["report", "/no/such/run"], "no such run directory"),
])
def test_eval_user_errors(args, needle, tmp_path):
    p = run(*args, "--out", str(tmp_path / "o"), tmp_path=tmp_path) if args[0] == "eval" else \
        run(*args, tmp_path=tmp_path)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_eval_of_problems_without_solutions_names_the_first(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"id": "q7", "problem": "2 * 3?", "reference_answer": 6}) + "\n")
    p = run("eval", str(data), "--critic", "arithmetic", "--out", str(tmp_path / "o"),
            tmp_path=tmp_path)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == (f"error: {data}:1: steps: no solution to critique "
                                "(give 'steps' or 'solution')")


def test_a_bad_critic_name_leaves_no_run_behind(tmp_path):
    p = run("eval", "processbench:gsm8k", "--critic", "oracle", "--out", str(tmp_path / "o"),
            tmp_path=tmp_path)
    assert p.returncode == 2 and not (tmp_path / "o").exists()
