"""`criticlab label ...` as a user runs it: inject, mc, synth, export."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

GSM8K = ROOT / "tests" / "data" / "fixtures" / "gsm8k" / "test.jsonl"


def run(*args, tmp_path):
    env = {**os.environ, "COLUMNS": "200", "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "criticlab", "label", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)


@pytest.fixture
def injected(tmp_path):
    out = tmp_path / "inj.json"
    p = run("inject", str(GSM8K), "--per-problem", "1", "--types", "calculation",
            "--out", str(out), tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    return out


def test_inject_then_export_without_a_model(injected, tmp_path):
    recs = json.loads(injected.read_text())
    slipped = [r for r in recs if r["label"] >= 0]
    assert slipped and all(r["error_type"] == "calculation" for r in slipped)
    p = run("export", str(injected), "--format", "stepwise", "--out",
            str(tmp_path / "prm.jsonl"), tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in (tmp_path / "prm.jsonl").read_text().splitlines()]
    assert len(rows) == len(recs)
    first = next(r for r in rows if not all(r["labels"]))
    assert first["labels"].index(False) in {r["label"] for r in slipped}
    assert (tmp_path / "prm" / "dataset_info.json").is_file()


def test_export_user_errors(tmp_path):
    p = run("export", "nosuch.json", "--format", "sft", "--out", str(tmp_path / "x.jsonl"),
            tmp_path=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr


@pytest.mark.slow
def test_mc_synth_and_sft_export_on_the_embedded_model(injected, tmp_path, embedded_path):
    mc = run("mc", str(injected), "--rollouts", "2", "--max-tokens", "24", "--limit", "2",
             "--method", "binary", "--out", str(tmp_path / "mc"), tmp_path=tmp_path)
    assert mc.returncode == 0, mc.stderr
    m = json.loads((tmp_path / "mc" / "metrics.json").read_text())
    assert m["n"] == 2 and (tmp_path / "mc" / "labels.jsonl").is_file()
    synth = run("synth", str(injected), "--samples", "2", "--max-tokens", "24", "--limit", "2",
                "--out", str(tmp_path / "synth"), tmp_path=tmp_path)
    assert synth.returncode == 0, synth.stderr
    s = json.loads((tmp_path / "synth" / "metrics.json").read_text())
    assert s["critiques"] == 4 and 0.0 <= s["keep_rate"] <= 1.0
    exp = run("export", str(tmp_path / "synth" / "critiques.jsonl"), "--format", "sft",
              "--out", str(tmp_path / "sft.jsonl"), tmp_path=tmp_path)
    assert exp.returncode == 0, exp.stderr
    rows = [json.loads(x) for x in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["messages"][-1]["role"] == "assistant"


def test_mc_method_user_errors(injected, tmp_path):
    for args in (["--method", "ternary"], ["--method", "binary", "--check-right"]):
        p = run("mc", str(injected), *args, "--out", str(tmp_path / "mc"), tmp_path=tmp_path)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
        assert ("unknown method" in p.stderr) or ("--check-right" in p.stderr)
    assert not (tmp_path / "mc").exists()


@pytest.mark.slow
def test_mc_anchored_on_the_embedded_model_resumes_from_the_store(injected, tmp_path,
                                                                 embedded_path):
    args = ("mc", str(injected), "--rollouts", "2", "--max-tokens", "16", "--limit", "2",
            "--method", "anchored", "--out", str(tmp_path / "mc"))
    first = run(*args, tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    m = json.loads((tmp_path / "mc" / "metrics.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "mc" / "labels.jsonl").read_text().splitlines()]
    assert m["n"] == 2 and m["method"] == "anchored" and len(rows) == 2
    assert m["mean_rollouts"] == sum(r["rollouts"] for r in rows) / 2
    for r in rows:
        assert r["method"] == "anchored"
        if r["answer_correct"]:
            assert r["rollouts"] == 0 and r["first_error"] is None
        else:  # the last prefix is never rolled out: the wrong answer fixes it as bad
            assert r["first_error"] is not None
            assert all(x["index"] < len(r["steps"]) - 1 for x in r["labels"])
    again = run(*args, tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr
    m2 = json.loads((tmp_path / "mc" / "metrics.json").read_text())
    assert m2["this_run"]["engine_calls"] == 0 and m2["this_run"]["resumed_items"] == 2
    assert m2["first_errors"] == m["first_errors"]


@pytest.mark.slow
def test_mc_anchored_scan_through_an_openai_server(injected, tmp_path, llama_server):
    """The early-stopping probes through a served model (llama.cpp's server, one sample per
    request): chunks of the N-sample request through the store, then a per-step run in the
    same directory draws only the samples the search did not."""
    common = ("mc", str(injected), "--actor", "openai:smollm2", "--base-url", llama_server,
              "--rollouts", "4", "--max-tokens", "16", "--limit", "2",
              "--out", str(tmp_path / "mc"))
    scan = run(*common, "--method", "anchored-scan", tmp_path=tmp_path)
    assert scan.returncode == 0, scan.stderr
    m = json.loads((tmp_path / "mc" / "metrics.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "mc" / "labels.jsonl").read_text().splitlines()]
    assert m["method"] == "anchored-scan" and len(rows) == 2
    drawn = sum(r["rollouts"] for r in rows)
    assert m["this_run"]["engine_calls"] >= 1
    for r in rows:
        for lab in r["labels"]:  # a probe stops at its first success, or draws all 4
            assert (lab["hard"] == 1 and len(lab["answers"]) <= 4) or (
                lab["hard"] == 0 and len(lab["answers"]) == 4)
            assert lab.get("stopped", False) == (len(lab["answers"]) < 4)
    per_step = run(*common, "--method", "per-step", tmp_path=tmp_path)
    assert per_step.returncode == 0, per_step.stderr
    m2 = json.loads((tmp_path / "mc" / "metrics.json").read_text())
    steps = sum(len(r["steps"]) for r in rows)
    assert m2["method"] == "per-step"
    # every sample the scan drew came from the store, the rest from the server (a prefix the
    # scan rolled out in full needs no engine call)
    full = sum(len(lab["answers"]) == 4 for r in rows for lab in r["labels"])
    assert m2["this_run"]["store_hits"] >= drawn
    assert m2["this_run"]["engine_calls"] <= steps - full
