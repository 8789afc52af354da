"""One resume rule for every job: a run directory resumes only the settings that computed it;
a changed setting that decides the results is refused with one line, a changed setting that
does not (limit, concurrency, threads, timeout) resumes, and results are stored under a key
made of the settings, so they can never be read back by other ones."""

import json
from dataclasses import replace

import pytest

from criticlab.errors import ConfigError
from criticlab.evaluate import EvalConfig
from criticlab.infer.jobs import RefineConfig, SelectConfig, run_refine
from criticlab.jobs import EngineSpec, open_run
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
