import json

import pytest

from criticlab.label.export import (
    preference_rows,
    reference_critique,
    rl_rows,
    rows_for,
    rule_reward,
    sft_rows,
    stepwise_rows,
    write_rows,
)
from criticlab.label.synthesize import SynthConfig, kept, label_synth, read_critiques
from criticlab.types import Critique, Example, Gold, Problem, Solution

EX = Example(Problem("a", "Tom has 3 bags of 4 apples. How many?"),
             Solution(("3 * 4 = 13", "So 13 apples.")), Gold(0))
OK = Example(Problem("b", "What is 2 + 2?"), Solution(("2 + 2 = 4",)), Gold(None, None, True))


def crit(fe, raw, parsed=True):
    return Critique(first_error=fe, verdict=None if not parsed else
                    ("correct" if fe is None else "incorrect"), raw=raw, parsed=parsed)


def test_rule_reward():
    assert rule_reward(crit(0, "x"), 0) == 1.0
    assert rule_reward(crit(1, "x"), 0) == 0.5      # right verdict, wrong step
    assert rule_reward(crit(None, "x"), 0) == 0.0   # wrong verdict
    assert rule_reward(crit(None, "x"), -1) == 1.0
    assert rule_reward(crit(None, "x", parsed=False), -1) == -0.5


def test_sft_rows_use_the_best_kept_critique_or_the_reference():
    rows = sft_rows([EX, OK], {"a": [crit(1, "near"), crit(0, "exact")]})
    assert rows[0]["messages"][-1] == {"role": "assistant", "content": "exact"}
    assert rows[1]["messages"][-1]["content"] == "No paragraph contains an error.\n\n\\boxed{-1}"
    assert rows[0]["messages"][0]["role"] == "user"
    assert "<paragraph_0>\n3 * 4 = 13\n</paragraph_0>" in rows[0]["messages"][0]["content"]


def test_reference_critique_stepwise_parses_back():
    from criticlab.critics.parsing import parse_stepwise
    c = parse_stepwise(reference_critique(EX, "stepwise"), 2, "stepwise")
    assert c.first_error == 0 and c.verdict == "incorrect"


def test_preference_pairs_need_a_contrast():
    crits = {"a": [crit(None, "wrong"), crit(0, "right"), crit(1, "half")],
             "b": [crit(None, "r1"), crit(None, "r2")]}
    rows = preference_rows([EX, OK], crits)
    assert len(rows) == 1
    assert rows[0]["chosen"][0]["content"] == "right"
    assert rows[0]["rejected"][0]["content"] == "wrong"


def test_stepwise_and_rl_rows():
    assert stepwise_rows([EX, OK]) == [
        {"prompt": EX.problem.question, "completions": ["3 * 4 = 13", "So 13 apples."],
         "labels": [False, False]},
        {"prompt": OK.problem.question, "completions": ["2 + 2 = 4"], "labels": [True]}]
    r = rl_rows([EX])[0]
    assert r["gold_first_error"] == 0 and r["gold_verdict"] == "incorrect"


@pytest.mark.parametrize("fmt", ["sft", "preference", "stepwise", "rl"])
def test_each_format_round_trips_through_datasets(tmp_path, fmt):
    datasets = pytest.importorskip("datasets")
    crits = {"a": [crit(None, "wrong"), crit(0, "right")]}
    rows = rows_for(fmt, [EX, OK], crits)
    path = write_rows(rows, tmp_path / f"{fmt}.jsonl")
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    assert loaded.to_list() == rows
    assert datasets.load_from_disk(str(tmp_path / fmt)).to_list() == rows


def test_kept_filters_by_label():
    assert kept([crit(0, "a"), crit(1, "b"), crit(None, "c", parsed=False)], 0) == [0]


def test_synthesis_with_a_scripted_teacher(tmp_path, monkeypatch):
    from criticlab import registry
    from criticlab.models.scripted import ScriptedModel
    data = tmp_path / "d.json"
    data.write_text(json.dumps([
        {"id": "a", "problem": "q1", "steps": ["1 + 1 = 3", "so 3"], "label": 0},
        {"id": "b", "problem": "q2", "steps": ["2 + 2 = 4"], "label": -1}]))
    answers = [r"\boxed{0}", r"\boxed{1}", r"\boxed{-1}", "none"]
    monkeypatch.setattr(registry, "make_model",
                        lambda spec, **kw: ScriptedModel(answers, name="teacher", cycle=True))
    m = label_synth(SynthConfig(data=str(data), out=tmp_path / "run", samples=4))
    # item a keeps "\boxed{0}", item b "\boxed{-1}": 2 of 8; unparsed: "none" twice, and
    # "\boxed{1}" for b, which has no step 1
    assert (m["critiques"], m["kept"], m["unparsed"]) == (8, 2, 3)
    assert m["keep_rate"] == 0.25 and m["items_with_a_kept_critique"] == 2
    examples, every, good = read_critiques(tmp_path / "run" / "critiques.jsonl")
    assert [e.problem.id for e in examples] == ["a", "b"]
    assert [c.raw for c in good["a"]] == [r"\boxed{0}"]
    assert len(every["b"]) == 4
