import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from criticlab.critics.prompted import PromptedCritic
from criticlab.errors import ConfigError
from criticlab.evaluate import EvalConfig, evaluate
from criticlab.models.scripted import ScriptedModel
from criticlab.store import Store
from criticlab.types import Example, Gold, Problem, Solution
from tests.conftest import ROOT


def examples(n):
    return [Example(Problem(f"p{i}", f"What is {i} + {i}?", metadata={"subset": "toy"}),
                    Solution((f"{i} + {i} = {2 * i + (i % 2)}", "done")),
                    Gold(0 if i % 2 else None, None, not i % 2)) for i in range(n)]


def test_evaluate_writes_run_dir_and_resumes(tmp_path):
    exs = examples(6)
    config = EvalConfig(benchmark="toy", out=tmp_path / "run", critic="processbench")
    answers = lambda m, c, i: r"\boxed{0}" if "1 + 1" in m[0].content else r"\boxed{-1}"  # noqa: E731
    model = ScriptedModel(answers)
    run = evaluate(config, examples=exs[:4], critic=PromptedCritic(model))
    assert len(model.requests) == 4 and run.metrics["complete"]
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert {"config.json", "metrics.json", "results.jsonl", "store.sqlite"} <= set(files)
    # p1 has gold 0 and prediction 0; p3 gold 0, prediction -1; p0, p2 correct and -1
    pb = run.metrics["processbench"]["toy"]
    assert (pb["acc_err"], pb["acc_cor"]) == (50.0, 100.0)
    # a second run over more items only critiques the new ones
    model2 = ScriptedModel(answers)
    run2 = evaluate(config, examples=exs, critic=PromptedCritic(model2))
    assert len(model2.requests) == 2 and run2.metrics["this_run"]["resumed_items"] == 4
    lines = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["example"]["problem"]["id"] for x in lines] == [e.problem.id for e in exs]


def test_engine_errors_are_recorded_not_stored(tmp_path):
    from criticlab.errors import ModelError

    class Flaky:
        name = "flaky"
        calls = 0

        async def generate(self, messages, config):
            Flaky.calls += 1
            if "2 + 2" in messages[0].content:
                raise ModelError("server down", retryable=True)
            return await ScriptedModel([r"\boxed{-1}"]).generate(messages, config)

    config = EvalConfig(benchmark="toy", out=tmp_path / "run")
    run = evaluate(config, examples=examples(3), critic=PromptedCritic(Flaky()))
    assert run.metrics["errors"] == 1 and not run.metrics["complete"]
    assert [r.error for r in run.results] == [None, None, "server down"]
    with Store(tmp_path / "run" / "store.sqlite") as s:
        from criticlab.jobs import run_key

        assert len(list(s.results(run_key(config, {"critic_object": "processbench"})))) == 2


def test_refuses_a_run_dir_of_another_config(tmp_path):
    evaluate(EvalConfig(benchmark="toy", out=tmp_path / "r", critic="processbench"),
             examples=examples(1), critic=PromptedCritic(ScriptedModel([r"\boxed{-1}"])))
    with pytest.raises(ConfigError, match="holds a run with critic='processbench'"):
        evaluate(EvalConfig(benchmark="toy", out=tmp_path / "r", critic="stepwise"),
                 examples=examples(1))


def test_bad_config_values():
    with pytest.raises(ConfigError, match="--samples must be at least 1"):
        EvalConfig(benchmark="x", out=ROOT, samples=0)


def _records(path, n):
    recs = [{"id": f"r{i}", "problem": f"Sam has {i + 2} boxes of 3 pens. How many pens?",
             "steps": [f"{i + 2} * 3 = {3 * (i + 2) + i % 2}", "So that many pens."],
             "label": 0 if i % 2 else -1} for i in range(n)]
    path.write_text(json.dumps(recs))
    return path


def _eval(data, out, *extra):
    return [sys.executable, "-m", "criticlab", "eval", str(data), "--critic", "processbench",
            "--model", "embedded", "--max-tokens", "40", "--concurrency", "1", "--out", str(out),
            *extra]


def _critiques(out):
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    for r in rows:
        r["critique"].pop("usage")
    return rows


@pytest.mark.slow
def test_kill_9_and_rerun_equals_an_uninterrupted_run(tmp_path, embedded_path):
    data = _records(tmp_path / "d.json", 6)
    env = {**os.environ, "COLUMNS": "120"}
    full = subprocess.run(_eval(data, tmp_path / "full"), capture_output=True, env=env,
                          timeout=600)
    assert full.returncode == 0, full.stderr.decode()

    out = tmp_path / "killed"
    proc = subprocess.Popen(_eval(data, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    db = out / "store.sqlite"
    deadline = time.monotonic() + 300
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                done = sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 2:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    responses = sqlite3.connect(db).execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert 2 <= responses < 6

    again = subprocess.run(_eval(data, out), capture_output=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr.decode()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete"] and metrics["n"] == 6
    # no model call repeated: the rerun asked the engine only for what was never answered
    assert metrics["this_run"]["engine_calls"] == 6 - responses
    assert _critiques(out) == _critiques(tmp_path / "full")
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 6
        assert c.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 6


@pytest.mark.slow
def test_ctrl_c_writes_what_finished_and_says_how_to_resume(tmp_path, embedded_path):
    n = 24  # enough work left after the second result, however busy the machine
    data = _records(tmp_path / "d.json", n)
    out = tmp_path / "run"
    # A shell starts background jobs with SIGINT ignored and children inherit that (a
    # `make test &` would make criticlab rightly ignore Ctrl-C): give the child the default.
    proc = subprocess.Popen(_eval(data, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "200"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    db = out / "store.sqlite"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0] >= 2:
                break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "run the same command again to resume" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert not metrics["complete"] and 2 <= metrics["n"] < n
    assert len((out / "results.jsonl").read_text().splitlines()) == metrics["n"]


@pytest.mark.parametrize("critic", [
    "processbench", "stepwise", "deliberate", "principles", "rubric", "premise",
    "premise-nohint", "selfeval", "constraints", "arithmetic", "hybrid", "arithmetic,stepwise",
])
def test_eval_runs_with_every_critic(tmp_path, monkeypatch, critic):
    from criticlab import registry
    monkeypatch.setattr(registry, "make_model", lambda spec, **kw: ScriptedModel(
        [r"Step 1: correct - fine\nOverall: correct \boxed{-1} Score: 8"], cycle=True))
    run = evaluate(EvalConfig(benchmark="toy", out=tmp_path / "r", critic=critic,
                              max_tokens=32), examples=examples(3))
    assert run.metrics["n"] == 3 and run.metrics["complete"] and run.metrics["errors"] == 0
    assert len(run.results) == 3 and all(r.critique is not None for r in run.results)
    assert run.metrics["processbench"]["toy"]["n"] == 3


def test_abstain_rescores_a_verifier_that_checked_nothing(tmp_path):
    """A right solution with no arithmetic claim: the arithmetic verifier decides nothing.
    ``abstain`` changes the metrics only, so the finished run is re-scored without a call."""
    import json

    from criticlab.errors import ConfigError
    from criticlab.evaluate import EvalConfig, evaluate

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "w", "problem": "Is a square a rectangle?",
                                "steps": ["A square has four right angles.", "So yes."],
                                "label": -1}) + "\n", encoding="utf-8")
    config = EvalConfig(benchmark=str(data), out=tmp_path / "run", critic="arithmetic",
                        model="none")
    first = evaluate(config).metrics
    assert first["coverage"] == 0.0 and first["processbench"]["all"]["acc_cor"] == 0.0
    again = evaluate(replace(config, abstain="no-error")).metrics
    assert again["processbench"]["all"]["acc_cor"] == 100.0 and again["abstain"] == "no-error"
    assert again["this_run"]["resumed_items"] == 1
    with pytest.raises(ConfigError, match="--abstain must be one of: unknown, no-error"):
        EvalConfig(benchmark="x", out=tmp_path / "r", abstain="maybe")
