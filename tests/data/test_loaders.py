"""Benchmark loaders: real values from ../shared/data (skipped when absent), the project's
own small fixtures, located errors, and the hub fallback (offline here: never the network)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from criticlab.data import SPECS, load_benchmark
from criticlab.data.hub import ENV_VAR, unique_ids
from criticlab.errors import ConfigError, InputError
from criticlab.types import Example, Gold, Problem

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason=f"shared benchmark data not found at {SHARED}")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv(ENV_VAR, raising=False)


# --- real data ---------------------------------------------------------------------------

@needs_shared
def test_processbench_gsm8k_real() -> None:
    exs = load_benchmark("processbench:gsm8k", data_dir=str(SHARED))
    raw = json.loads((SHARED / "processbench" / "gsm8k.json").read_text())
    assert len(exs) == 400
    assert sum(e.gold is not None and e.gold.first_error is not None for e in exs) == 207
    first = exs[0]
    assert first.problem.id == raw[0]["id"]
    assert first.solution is not None and len(first.solution.steps) == len(raw[0]["steps"])
    assert first.gold == Gold(None if raw[0]["label"] == -1 else raw[0]["label"], None,
                              raw[0]["final_answer_correct"])
    assert first.problem.metadata == {"benchmark": "processbench", "subset": "gsm8k",
                                      "generator": raw[0]["generator"]}


@needs_shared
def test_processbench_math_real_via_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(SHARED))
    exs = load_benchmark("processbench:math")
    assert len(exs) == 1000
    assert sum(e.gold is not None and e.gold.first_error is not None for e in exs) == 594


@needs_shared
def test_limit_spans_subsets_in_order() -> None:
    assert [e.problem.id for e in load_benchmark("processbench", limit=3,
                                                 data_dir=str(SHARED))] == \
        ["gsm8k-0", "gsm8k-1", "gsm8k-2"]
    # 402 needs the first two math records; olympiadbench (not in shared/data) is not read
    exs = load_benchmark("processbench", limit=402, data_dir=str(SHARED))
    assert [e.problem.id for e in exs[-3:]] == ["gsm8k-399", "math-0", "math-1"]
    assert exs[-1].problem.metadata["subset"] == "math"


@needs_shared
def test_gsm8k_test_real() -> None:
    exs = load_benchmark("gsm8k", data_dir=str(SHARED))
    first_line = (SHARED / "gsm8k" / "test.jsonl").read_text().splitlines()[0]
    answer = json.loads(first_line)["answer"]
    assert len(exs) == 1319
    assert exs[0].problem.id == "gsm8k-test-1"
    assert exs[0].problem.reference_answer == answer.split("#### ")[1].replace(",", "").strip()
    assert exs[0].solution is not None
    assert exs[0].solution.steps == tuple(answer.split("\n#### ")[0].split("\n"))
    assert exs[0].gold == Gold(first_error=None, final_answer_correct=True)
    assert len(load_benchmark("gsm8k:train", limit=10, data_dir=str(SHARED))) == 10


@needs_shared
def test_path_spec_processbench_real() -> None:
    path = str(SHARED / "processbench" / "gsm8k.json")
    assert load_benchmark(path) == load_benchmark("processbench:gsm8k", data_dir=str(SHARED))


# --- fixtures ----------------------------------------------------------------------------

def test_prmbench_fixture_gold() -> None:
    exs = load_benchmark("prmbench", data_dir=str(FIXTURES))
    by_id = {e.problem.id: e for e in exs}
    assert len(exs) == 8 and len(by_id) == 8
    assert [e.problem.id for e in exs[:4]] == [
        "prm_test_p1_7:original", "prm_test_p1_7:modified",
        # the same idx under a second classification: renamed with the subset
        "redundency/prm_test_p1_7:original", "redundency/prm_test_p1_7:modified",
    ]
    orig, mod = by_id["prm_test_p1_7:original"], by_id["prm_test_p1_7:modified"]
    assert orig.gold == Gold(first_error=None, step_labels=(True, True, True))
    assert mod.gold == Gold(first_error=1, step_labels=(True, False, False))
    assert mod.problem.metadata == {"benchmark": "prmbench", "subset": "counterfactual",
                                    "variant": "modified"}
    assert mod.solution is not None and "350" in mod.solution.steps[1]
    assert by_id["redundency/prm_test_p1_7:modified"].gold == Gold(
        first_error=1, step_labels=(True, False, True, True))
    # multi_solutions: no error steps, the modified process is correct
    assert by_id["multi_solutions_prm_test_p1_12:modified"].gold == Gold(None, (True, True))
    missing = by_id["missing_condition_prm_test_p1_3:modified"]
    assert missing.gold == Gold(first_error=0, step_labels=(False, True))
    assert missing.problem.question != by_id["missing_condition_prm_test_p1_3:original"] \
        .problem.question
    # a path gives the same examples
    assert load_benchmark(str(FIXTURES / "prmbench" / "prmbench_preview.jsonl")) == exs


def test_named_specs_from_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    pb = load_benchmark("processbench:olympiadbench", data_dir=str(FIXTURES))
    assert [e.problem.id for e in pb] == ["olympiadbench-0", "olympiadbench-1"]
    assert [e.gold.first_error for e in pb if e.gold] == [None, 1]
    monkeypatch.setenv(ENV_VAR, str(FIXTURES))
    g = load_benchmark("gsm8k:test")
    assert [e.problem.reference_answer for e in g] == ["18", "1500", "8"]
    assert g[1].solution is not None and g[1].solution.steps == (
        "After buying, it has 1250 + 375 = <<1250+375=1625>>1,625 books.",
        "After giving some away, it has 1625 - 125 = <<1625-125=1500>>1,500 books.")
    assert g[1].solution.final_answer == "1500"
    # an explicit data_dir wins over the environment variable (and, lacking the file,
    # falls back to the hub: kept offline here by making `import datasets` fail)
    monkeypatch.setitem(sys.modules, "datasets", None)
    empty = FIXTURES / "prmbench"
    with pytest.raises(ConfigError, match=f"data_dir={empty}"):
        load_benchmark("gsm8k:test", data_dir=str(empty))


def test_limit_and_spec_errors() -> None:
    assert load_benchmark("prmbench", limit=0, data_dir=str(FIXTURES)) == []
    assert len(load_benchmark("prmbench", limit=3, data_dir=str(FIXTURES))) == 3
    with pytest.raises(ConfigError, match="limit"):
        load_benchmark("prmbench", limit=-1)
    with pytest.raises(ConfigError) as e:
        load_benchmark("procesbench")
    assert all(s in str(e.value) for s in SPECS)
    with pytest.raises(ConfigError, match="olympiadbench, omnimath"):
        load_benchmark("processbench:aime")
    with pytest.raises(ConfigError, match="test, train"):
        load_benchmark("gsm8k:dev")


def test_criticlab_records_by_path_and_unique_ids(tmp_path: Path) -> None:
    p = tmp_path / "mine.jsonl"
    p.write_text('{"id": "a", "problem": "1+1?", "steps": ["1+1=2"], "label": -1}\n'
                 '{"id": "a", "problem": "2+2?", "solution": "2+2=5", "label": 0}\n')
    exs = load_benchmark(str(p))
    assert [e.problem.id for e in exs] == ["a", "a#2"]
    assert exs[1].gold == Gold(first_error=0)


def test_unique_ids_rule() -> None:
    def ex(pid: str, subset: str | None) -> Example:
        return Example(Problem(pid, "q", metadata={"subset": subset} if subset else {}))
    got = [e.problem.id for e in unique_ids([ex("x", "s"), ex("x", "s"), ex("x", "s"),
                                            ex("x", None), ex("s/x", "t")])]
    assert got == ["x", "s/x", "x#2", "x#3", "t/s/x"]


# --- located errors ----------------------------------------------------------------------

def _pb(**over: object) -> str:
    rec = {"id": "t-1", "generator": "g", "problem": "p", "steps": ["a", "b"],
           "final_answer_correct": True, "label": -1, **over}
    return json.dumps({k: v for k, v in rec.items() if v is not None})


@pytest.mark.parametrize(("bad", "field"), [
    (_pb(label=2), "label"), (_pb(steps=None), "steps"), (_pb(steps="ab"), "steps"),
    (_pb(final_answer_correct="yes"), "final_answer_correct"), (_pb(problem=""), "problem"),
])
def test_processbench_bad_record_located(tmp_path: Path, bad: str, field: str) -> None:
    p = tmp_path / "omnimath.json"
    p.write_text(f"[\n  {_pb(id='t-0')},\n  {bad}\n]\n")
    with pytest.raises(InputError) as e:
        load_benchmark(str(p))
    assert (e.value.path, e.value.line, e.value.field) == (str(p), 3, field)
    assert str(e.value).startswith(f"{p}:3: {field}: ")


def test_processbench_bad_record_in_data_folder(tmp_path: Path) -> None:
    (tmp_path / "processbench").mkdir()
    p = tmp_path / "processbench" / "math.json"
    p.write_text(f"[{_pb(id='t-0')},\n\n {_pb(generator=3)}]")
    with pytest.raises(InputError, match=r"math\.json:3: generator: "):
        load_benchmark("processbench:math", data_dir=str(tmp_path))


def test_prmbench_and_gsm8k_bad_records_located(tmp_path: Path) -> None:
    lines = (FIXTURES / "prmbench" / "prmbench_preview.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["error_steps"] = [4]
    p = tmp_path / "prm.jsonl"
    p.write_text("\n".join([lines[1], "", json.dumps(rec)]) + "\n")
    with pytest.raises(InputError, match=r"prm\.jsonl:3: error_steps: step 4 is out of range"):
        load_benchmark(str(p))
    g = tmp_path / "test.jsonl"
    g.write_text('{"question": "q", "answer": "1+1=2\\n#### 2"}\n'
                 '{"question": "q", "answer": "1+1=2, so 2"}\n')
    with pytest.raises(InputError, match=r"test\.jsonl:2: answer: has no '#### '"):
        load_benchmark(str(g))
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('[{"id": 1,\n "problem": }]')
    with pytest.raises(InputError, match=r"broken\.json:2: invalid JSON"):
        load_benchmark(str(bad_json))
    with pytest.raises(InputError, match="no such file"):
        load_benchmark(str(tmp_path / "missing.json"))


# --- the hub fallback, offline ------------------------------------------------------------

def test_hub_without_datasets_says_pip_install(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` fails
    with pytest.raises(ConfigError) as e:
        load_benchmark("processbench:omnimath", data_dir=str(tmp_path))
    msg = str(e.value)
    assert "'processbench:omnimath'" in msg and "pip install datasets" in msg
    assert "processbench/omnimath.json" in msg and f"data_dir={tmp_path}" in msg


def _run_offline(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env.update(OFFLINE, HF_HOME=str(tmp_path / "hf"))  # no cached copy either
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_hub_offline_is_a_clear_config_error(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from criticlab.data import load_benchmark\n"
        "from criticlab.errors import ConfigError\n"
        "try:\n"
        "    load_benchmark('processbench:olympiadbench', data_dir=sys.argv[1])\n"
        "except ConfigError as e:\n"
        "    print('CONFIG', e)\n"
    )
    out = _run_offline(code, tmp_path, str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("CONFIG cannot load benchmark 'processbench:olympiadbench'")
    assert f"data_dir={tmp_path}" in out.stdout
    assert "pip install datasets" in out.stdout or "Qwen/ProcessBench" in out.stdout


def test_hub_rows_take_the_same_path(tmp_path: Path) -> None:
    """The hub branch, run for real by `datasets` on a local folder standing in for a hub
    repository, gives the same Examples as the local file."""
    pytest.importorskip("datasets")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(FIXTURES / "gsm8k" / "test.jsonl", repo / "test.jsonl")
    code = (
        "import json, sys\n"
        "from criticlab.data import gsm8k, hub\n"
        "src = hub.Source(rel='gsm8k/test.jsonl', hub=sys.argv[1], split='test')\n"
        "origin, records = hub.open_records('gsm8k', src, sys.argv[2])\n"
        "exs = hub.convert(origin, records, gsm8k.converter('test'))\n"
        "print(json.dumps([e.to_dict() for e in exs]))\n"
    )
    out = _run_offline(code, tmp_path, str(repo), str(tmp_path / "empty"))
    assert out.returncode == 0, out.stderr
    from_hub = [Example.from_dict(d) for d in json.loads(out.stdout.splitlines()[-1])]
    assert from_hub == load_benchmark("gsm8k:test", data_dir=str(FIXTURES))
