"""One resume rule for every job: a run directory resumes only the settings that computed it;
a changed setting that decides the results is refused with one line, a changed setting that
does not (limit, concurrency, threads, timeout) resumes, and results are stored under a key
made of the settings, so they can never be read back by other ones."""

import json
from dataclasses import replace

import pytest

from criticlab.engines import EngineSpec
from criticlab.errors import ConfigError
from criticlab.evaluate import EvalConfig
from criticlab.infer.jobs import RefineConfig, SelectConfig, run_refine
from criticlab.jobs import open_run
from criticlab.label.mc import MCConfig
from criticlab.label.synthesize import SynthConfig
from tests.conftest import ROOT
from tests.infer.test_jobs import SLIPPED

# one config per job, and for each a changed setting that decides its results
JOBS = [
    (EvalConfig("processbench:gsm8k", ROOT), {"samples": 4}),
    (RefineConfig("d.json", ROOT), {"rounds": 0}),
    (SelectConfig("d.json", ROOT), {"n": 4}),
    (SynthConfig("d.json", ROOT), {"engines": EngineSpec(max_tokens=64)}),
    (MCConfig("d.json", ROOT), {"seed": 1}),
]


@pytest.mark.parametrize("config,changed", JOBS, ids=lambda x: getattr(x, "KIND", ""))
def test_every_job_refuses_a_changed_setting_and_resumes_the_same(config, changed, tmp_path):
    config = replace(config, out=tmp_path / "run")
    key = open_run(config)
    assert key.startswith(config.KIND + "@")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["kind"] == config.KIND
    with pytest.raises(ConfigError, match=r"holds a run with .*: choose another --out") as e:
        open_run(replace(config, **changed))
    assert "\n" not in str(e.value)
    # settings that do not decide the results may change: same key, resumed
    cheap = {"limit": 3}
    if hasattr(config, "concurrency"):
        cheap["concurrency"] = 9
    assert open_run(replace(config, **cheap)) == key


def test_another_kind_of_run_is_refused(tmp_path):
    open_run(RefineConfig("d.json", tmp_path))
    with pytest.raises(ConfigError, match="holds a refine run, not label-mc"):
        open_run(MCConfig("d.json", tmp_path))


def test_a_variant_resumes_under_its_own_key(tmp_path):
    """label mc's method may change in one directory: each method's labels are its own."""
    per_step = open_run(MCConfig("d.json", tmp_path))
    binary = open_run(MCConfig("d.json", tmp_path, method="binary"))
    assert per_step != binary
    assert open_run(MCConfig("d.json", tmp_path)) == per_step


def test_keys_differ_with_the_settings_and_with_a_model_object(tmp_path):
    a = open_run(MCConfig("d.json", tmp_path / "a"))
    b = open_run(MCConfig("d.json", tmp_path / "b", seed=1))
    c = open_run(MCConfig("d.json", tmp_path / "c"), {"engine": "my-model"})
    assert len({a, b, c}) == 3


def test_refine_rounds_0_then_2_is_refused_not_stale(tmp_path):
    """The reported bug: the second run returned the rounds-0 results under rounds 2."""
    data = tmp_path / "d.json"
    data.write_text(json.dumps(SLIPPED))
    first = run_refine(RefineConfig(data=str(data), out=tmp_path / "run", critic="arithmetic",
                                    strategy="repair", rounds=0))
    assert first["accuracy_by_round"] == [50.0]
    with pytest.raises(ConfigError, match="holds a run with rounds=0, not 2"):
        run_refine(RefineConfig(data=str(data), out=tmp_path / "run", critic="arithmetic",
                                strategy="repair", rounds=2))
    # the same settings resume: every trajectory is read back, none recomputed
    again = run_refine(RefineConfig(data=str(data), out=tmp_path / "run", critic="arithmetic",
                                    strategy="repair", rounds=0))
    assert again["this_run"]["resumed_items"] == 2
    assert again["accuracy_by_round"] == [50.0]


def test_a_run_directory_from_before_kinds_still_resumes(tmp_path):
    """A config.json written before runs recorded their kind is accepted: the identity
    fields decide. (Its items were stored under the old key: they are recomputed, every model
    response coming from the store.)"""
    data = tmp_path / "d.json"
    data.write_text(json.dumps(SLIPPED))
    config = RefineConfig(data=str(data), out=tmp_path / "run", critic="arithmetic",
                          strategy="repair", rounds=2)
    run_refine(config)
    path = tmp_path / "run" / "config.json"
    old = json.loads(path.read_text())
    del old["kind"]
    path.write_text(json.dumps(old))
    assert run_refine(config)["this_run"]["resumed_items"] == 2


# -- bad records among good ones: every job runs the good ones, then reports the bad ----------
MIXED = [
    json.dumps(SLIPPED[0]),
    "{broken",
    json.dumps({"id": "noref", "problem": "q", "steps": ["1 + 1 = 2"]}),
    json.dumps({"id": "bare", "problem": "q", "reference_answer": "2"}),
    json.dumps(SLIPPED[1]),
]


def _cli(*args, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "200", "CRITICLAB_STORE": str(tmp_path / "s.sqlite")}
    return subprocess.run([sys.executable, "-m", "criticlab", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


@pytest.mark.parametrize("cmd,rows,good,errors", [
    (["eval", "{data}", "--critic", "arithmetic", "--out", "{out}"], "results.jsonl",
     ["a", "noref", "b"],  # eval needs no reference answer
     ["{data}:2: invalid JSON", "{data}:4: steps: no solution to critique"]),
    (["refine", "{data}", "--critic", "arithmetic", "--strategy", "repair", "--draft", "given",
      "--out", "{out}"], "trajectories.jsonl", ["a", "b"],
     ["{data}:2: invalid JSON", "{data}: reference_answer: noref has no reference answer",
      "{data}: steps: bare has no solution to refine (--draft given)"]),
])
def test_jobs_run_the_good_records_and_report_the_bad(cmd, rows, good, errors, tmp_path):
    data, out = tmp_path / "mixed.jsonl", tmp_path / "run"
    data.write_text("\n".join(MIXED) + "\n")
    p = _cli(*[a.format(data=data, out=out) for a in cmd], tmp_path=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    lines = [x for x in p.stderr.splitlines() if x.startswith("error:")]
    for want in errors:
        assert any(want.format(data=data) in x for x in lines), (want, lines)
    written = [json.loads(x) for x in (out / rows).read_text().splitlines()]
    ids = [r["example"]["problem"]["id"] if "example" in r else r["problem"]["id"]
           for r in written]
    assert ids == good
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["input_errors"]) == len(errors)


def test_a_file_with_no_good_record_is_refused_before_any_run(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text("{broken\n")
    p = _cli("eval", str(data), "--critic", "arithmetic", "--out", str(tmp_path / "run"),
             tmp_path=tmp_path)
    assert p.returncode == 2 and f"error: {data}:1: invalid JSON" in p.stderr
    assert not (tmp_path / "run").exists()


def test_label_export_writes_the_good_records_and_names_the_bad(tmp_path):
    """A bare problem crashed export with an AssertionError traceback (found by the fuzz
    suite); an unlabelled record stopped the whole export."""
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join([
        json.dumps({"id": "a", "problem": "q", "steps": ["1 + 1 = 2"], "label": -1}),
        json.dumps({"id": "bare", "problem": "q"}),
        json.dumps({"id": "nolabel", "problem": "q", "steps": ["1 + 1 = 2"]}),
    ]) + "\n")
    out = tmp_path / "rows.jsonl"
    p = _cli("label", "export", str(data), "--format", "stepwise", "--out", str(out),
             "--no-dataset", tmp_path=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert f"error: {data}:2: steps: no solution to critique" in p.stderr
    assert f"error: {data}: label: nolabel has no label to export" in p.stderr
    assert len(out.read_text().splitlines()) == 1


def test_a_model_is_built_on_its_first_request_not_before(tmp_path):
    """Engines builds every model of every job; a model whose requests are all stored is never
    loaded (a resumed run starts at once), and its name is known before it is built."""
    import asyncio

    from criticlab.engines import Engines
    from criticlab.models.base import GenerateConfig, Generation, Message
    from criticlab.models.spec import ModelSpec
    from criticlab.store import Store, request_key

    spec = f"llamacpp:{tmp_path / 'missing.gguf'}"
    msgs, cfg = [Message("user", "hi")], GenerateConfig(max_tokens=8)
    with Store(tmp_path / "s.sqlite") as store:
        engines = Engines(EngineSpec(model=spec), store)
        m = engines.model()
        assert m is engines.model(spec) and m.name == ModelSpec.parse(spec).name
        store.put_response(request_key(m.name, msgs, cfg, 0), m.name, {}, Generation("stored"))
        assert [g.text for g in asyncio.run(m.generate(msgs, cfg))] == ["stored"]
        assert not m.model.built and m.stats.hits == 1
        with pytest.raises(ConfigError, match=r"missing\.gguf"):  # the first real request loads it
            asyncio.run(m.generate([Message("user", "new")], cfg))


def test_an_interrupted_job_still_writes_what_it_finished(tmp_path):
    """run_job writes the job's files and metrics.json when the run stops early (here a bug
    in the third item's work), and a rerun resumes from the stored items."""
    from criticlab.infer.jobs import RefineJob
    from criticlab.jobs import run_job

    data = tmp_path / "d.json"  # four problems: two slips, two right
    data.write_text(json.dumps(SLIPPED + [{**r, "id": r["id"] + "2"} for r in SLIPPED]))
    config = RefineConfig(data=str(data), out=tmp_path / "run", critic="arithmetic",
                          strategy="repair", rounds=1)

    class Stops(RefineJob):
        def work(self, engines):
            run, seen = super().work(engines), []

            async def stop_at_third(ex):
                seen.append(ex.problem.id)
                if len(seen) == 3:
                    raise RuntimeError("stopped")
                return await run(ex)

            return stop_at_third

    config = replace(config, engines=EngineSpec(concurrency=1))
    with pytest.raises(RuntimeError, match="stopped"):
        run_job(Stops(config))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    rows = (tmp_path / "run" / "trajectories.jsonl").read_text().splitlines()
    n = metrics["n"]  # the two before the bug, and the fourth if it ran before the stop
    assert not metrics["complete"] and n == len(rows) and n in (2, 3)
    assert "a2" not in {json.loads(r)["problem"]["id"] for r in rows}  # the item that failed
    again = run_refine(config)
    assert again["complete"] and again["this_run"]["resumed_items"] == n and again["n"] == 4


def test_a_run_made_before_structured_existed_still_resumes(tmp_path):
    """config.json files written before --structured have no such field: the run resumes
    free text under the same key, and refuses --structured in one line."""
    config = EvalConfig("processbench:gsm8k", tmp_path / "run")
    key = open_run(config)
    path = tmp_path / "run" / "config.json"
    old = json.loads(path.read_text())
    del old["structured"]
    path.write_text(json.dumps(old))
    assert open_run(config) == key
    path.write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="structured=None, not True"):
        open_run(replace(config, structured=True))
    assert open_run(replace(config, out=tmp_path / "other", structured=True)) != key


def test_atomic_writes_of_one_file_from_two_writers_never_collide(tmp_path):
    """Each write has a temporary file of its own (the fixed name made one of two writers
    fail with FileNotFoundError); the file is always one writer's whole rows."""
    import threading

    from criticlab.jobs import write_jsonl

    path = tmp_path / "results.jsonl"
    failures = []

    def writer(tag):
        try:
            for i in range(300):
                write_jsonl(path, [{"tag": tag, "i": i, "row": r} for r in range(20)])
        except Exception as e:
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 20 and len({(r["tag"], r["i"]) for r in rows}) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["results.jsonl"]


def test_a_run_directory_is_held_by_one_runner(tmp_path):
    import os

    from criticlab.rundir import RunDir

    with RunDir(tmp_path / "run"), pytest.raises(
            ConfigError, match=f"in use by process {os.getpid()} "):
        RunDir(tmp_path / "run")
    assert not (tmp_path / "run" / "run.lock").exists()  # removed as it is let go
    with RunDir(tmp_path / "run") as run:  # and taken again
        assert (tmp_path / "run" / "run.lock").read_text() == f"{os.getpid()}\n"
    assert list(run.out.iterdir()) == []


def test_a_write_that_fails_is_one_line_and_leaves_the_old_file_whole(tmp_path):
    from criticlab.jobs import write_json

    path = tmp_path / "metrics.json"
    write_json(path, {"n": 3})
    with pytest.raises(TypeError):  # a bug in the caller: raised as it is
        write_json(path, {"n": 4, "bad": object()})
    assert json.loads(path.read_text()) == {"n": 3}
    (tmp_path / "results.jsonl").mkdir()
    with pytest.raises(ConfigError, match=r"cannot write .*results\.jsonl: a directory is in "
                                          "the way of a file: move it away"):
        write_json(tmp_path / "results.jsonl", {"n": 4})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "results.jsonl"]
