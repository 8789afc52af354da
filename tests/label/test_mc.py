from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import pytest

from criticlab.cache import CachedModel
from criticlab.errors import ConfigError, InputError
from criticlab.label.mc import (
    MCConfig,
    StepLabel,
    binary_first_error,
    continue_prompt,
    first_zero,
    label_mc,
    rollout_labels,
    template_parts,
)
from criticlab.models.base import GenerateConfig, Message
from criticlab.models.scripted import ScriptedModel
from criticlab.store import Store
from criticlab.types import Problem, Usage

Q = "Natalia sold clips to 48 friends in April and half as many in May. How many in all?"
PROBLEM = Problem("p", Q, "72")
STEPS = ("April: 48 clips.", "May: 48 / 2 = 24 clips.", "Total: 48 + 24 = 70 clips.",
         "The answer is 70.")
CFG = GenerateConfig(temperature=0.8, seed=0, max_tokens=32)
N = 4
_STEP_LINE = re.compile(r"^Step (\d+): ", re.MULTILINE)


def prefix_len(messages: Sequence[Message]) -> int:
    """How many solution steps the continue prompt shows."""
    return max((int(k) for k in _STEP_LINE.findall(messages[-1].content)), default=0)


def actor(good: dict[str, int] | int) -> ScriptedModel:
    """Prefixes of up to ``good`` steps reach 72 on even sample seeds (p = 0.5, decided by the
    seed, so cached and fresh samples agree); longer prefixes never do. ``good`` may depend
    on the question."""

    def script(messages: Sequence[Message], config: GenerateConfig, i: int) -> str:
        m = prefix_len(messages)
        g = good if isinstance(good, int) else next(v for q, v in good.items()
                                                     if q in messages[-1].content)
        assert config.seed is not None
        value = 72 if m <= g and (config.seed + i) % 2 == 0 else 70
        return f"Step {m + 1}: so it is {value}.\nThe answer is {value}."

    return ScriptedModel(script, name="scripted-actor")


async def test_per_step_labels_are_exact_hard_and_soft() -> None:
    model = actor(2)
    labels = await rollout_labels(model, PROBLEM, STEPS, N, CFG)
    assert [lab.hard for lab in labels] == [1, 1, 0, 0]
    assert [lab.soft for lab in labels] == [0.5, 0.5, 0.0, 0.0]
    assert labels[0].answers == ("72", "70", "72", "70")
    assert first_zero(labels) == 2
    # one request of n=N per prefix, one user message each
    assert len(model.requests) == len(STEPS)
    assert all(c.n == N and len(m) == 1 and m[0].role == "user" for m, c in model.requests)
    assert StepLabel.from_dict(labels[1].to_dict()) == labels[1]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7, 8])
async def test_binary_search_agrees_with_per_step_from_the_same_rollouts(
        tmp_path: Path, k: int) -> None:
    steps = tuple(f"Step text {j}." for j in range(k))
    for good in range(k + 1):
        scripted = actor(good)
        with Store(tmp_path / f"s{k}-{good}.sqlite") as store:
            model = CachedModel(scripted, store)
            per_step = await rollout_labels(model, PROBLEM, steps, N, CFG)
            calls = model.stats.calls
            asked = {m for m, _ in scripted.requests}
            first, probes = await binary_first_error(model, PROBLEM, steps, N, CFG)
            assert model.stats.calls == calls  # every probe was a per-step request
            assert {m for m, _ in scripted.requests} == asked
        assert first == first_zero(per_step) == (good if good < k else None)
        assert len(probes) <= math.ceil(math.log2(k)) + 1
        by_index = {lab.index: lab for lab in per_step}
        assert all(by_index[p.index].hard == p.hard and by_index[p.index].soft == p.soft
                   for p in probes)


async def test_binary_search_alone_asks_only_its_probes() -> None:
    model = actor(2)
    first, probes = await binary_first_error(model, PROBLEM, STEPS, N, CFG)
    assert first == 2 and [p.index for p in probes] == [2, 1]
    assert len(model.requests) == 2 and all(c.n == N for _, c in model.requests)
    assert [prefix_len(m) for m, _ in model.requests] == [3, 2]


def test_prompt_of_a_longer_prefix_extends_the_shorter_up_to_the_tail() -> None:
    head, tail = template_parts()
    prompts = [continue_prompt(Q, STEPS[: i + 1]) for i in range(len(STEPS))]
    for short, long in pairwise(prompts):
        assert short.endswith(tail) and long.endswith(tail)
        assert long.startswith(short.removesuffix(tail))
    assert prompts[0].startswith(head.replace("{problem}", Q))


def test_prompt_golden() -> None:
    assert continue_prompt("What is 2 + 3?", ("2 + 3 = 5.",)) == (
        'Solve the following problem step by step. Write one step per line, each starting '
        'with "Step k:" (Step 1, Step 2, ...), and show every calculation.\n\n'
        "Problem:\nWhat is 2 + 3?\n\n"
        "Solution so far:\nStep 1: 2 + 3 = 5.\n\n"
        'Continue from the next step; do not repeat the steps above. End with a line '
        '"The answer is X." where X is the final answer alone.\n')


async def test_the_sent_prompts_extend_each_other() -> None:
    model = actor(2)
    await rollout_labels(model, PROBLEM, STEPS, N, CFG)
    _, tail = template_parts()
    sent = [m[0].content for m, _ in model.requests]
    assert len(sent) == len(STEPS)
    assert all(b.startswith(a.removesuffix(tail)) for a, b in pairwise(sent))


Q2 = "Weng earns $12 an hour for babysitting. She did 50 minutes. How much did she earn?"
DATA = [
    {"id": "wrong", "problem": Q, "steps": list(STEPS), "label": 2,
     "final_answer_correct": False, "generator": "inject", "reference_answer": "72"},
    {"id": "right", "problem": Q2, "steps": ["12 / 60 = 0.2 per minute.",
                                             "0.2 * 50 = 10.", "The answer is 10."],
     "label": -1, "final_answer_correct": True, "generator": "reference",
     "reference_answer": "10"},
]


def test_label_mc_runs_resumes_and_shares_rollouts_between_methods(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text(json.dumps(DATA))

    def script(messages: Sequence[Message], config: GenerateConfig, i: int) -> str:
        text = messages[-1].content
        assert config.seed is not None
        if Q2 in text:
            return "The answer is 10."
        m = prefix_len(messages)
        return "The answer is 72." if m <= 2 and (config.seed + i) % 2 == 0 else "So 70."

    out = tmp_path / "run"
    seen: list[tuple[int, int]] = []
    m = label_mc(MCConfig(str(data), out, rollouts=N), lambda d, t: seen.append((d, t)),
                 model=ScriptedModel(script))
    assert m["first_errors"] == {"wrong": 2, "right": None}
    assert m["agreement"] == 100.0 and m["agreement_n"] == 2 and m["complete"]
    assert m["mean_rollouts"] == (4 * N + 3 * N) / 2 and m["this_run"]["engine_calls"] == 7
    assert seen == [(1, 2), (2, 2)]
    lines = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == ["wrong", "right"]
    assert lines[0]["hard"] == [1, 1, 0, 0] and lines[0]["soft"] == [0.5, 0.5, 0.0, 0.0]
    assert lines[1]["hard"] == [1, 1, 1] and lines[0]["gold_first_error"] == 2
    assert json.loads((out / "metrics.json").read_text())["n"] == 2
    assert json.loads((out / "config.json").read_text())["method"] == "per-step"

    again = label_mc(MCConfig(str(data), out, rollouts=N), model=ScriptedModel(script))
    assert again["this_run"] == {"engine_calls": 0, "store_hits": 0,  # read back whole
                                 "resumed_items": 2}
    assert again["first_errors"] == m["first_errors"]

    b = label_mc(MCConfig(str(data), out, rollouts=N, method="binary"),
                 model=ScriptedModel(script))
    assert b["first_errors"] == {"wrong": 2, "right": None} and b["agreement"] == 100.0
    assert b["this_run"]["engine_calls"] == 0 and b["this_run"]["store_hits"] == 2 * N
    assert b["mean_rollouts"] == 2 * N / 2  # two probes for "wrong", none for "right"
    rows_b = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    assert rows_b[0]["hard"] == [None, 1, 0, None]
    assert [p["index"] for p in rows_b[0]["labels"]] == [2, 1]
    assert Usage.from_dict(rows_b[0]["usage"]).completion_tokens > 0


def test_config_and_data_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown method"):
        MCConfig("x", tmp_path, method="ternary")
    with pytest.raises(ConfigError, match="rollouts"):
        MCConfig("x", tmp_path, rollouts=0)
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"problem": "q", "steps": ["1 + 1 = 2"]}]))
    with pytest.raises(InputError, match="no reference answer"):
        label_mc(MCConfig(str(data), tmp_path / "r"), model=ScriptedModel([]))


@pytest.mark.slow
def test_label_mc_end_to_end_on_the_embedded_model(tmp_path: Path, embedded_model) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "d.jsonl"
    recs = [{"id": "a", "problem": Q, "reference_answer": "72", "label": 1,
             "final_answer_correct": False, "generator": "inject",
             "steps": ["Natalia sold 48/2 = 24 clips in May.",
                       "Natalia sold 48+24 = 70 clips altogether."]}]
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "run"
    config = MCConfig(str(data), out, rollouts=2, max_tokens=48)
    m = label_mc(config, model=embedded_model)
    assert m["n"] == 1 and m["complete"] and m["errors"] == 0
    assert m["this_run"]["engine_calls"] == 2 and m["mean_rollouts"] == 4
    assert m["usage"]["completion_tokens"] > 0 and m["agreement_n"] == 1
    (row,) = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    assert len(row["hard"]) == 2 and all(h in (0, 1) for h in row["hard"])
    assert all(s in (0.0, 0.5, 1.0) for s in row["soft"])
    assert row["first_error"] == first_zero([StepLabel.from_dict(x) for x in row["labels"]])
    assert all(len(x["answers"]) == 2 for x in row["labels"])
    # a rerun reads everything back; the binary search reuses the per-step rollouts
    assert label_mc(config, model=embedded_model)["this_run"]["engine_calls"] == 0
    b = label_mc(MCConfig(str(data), out, rollouts=2, max_tokens=48, method="binary"),
                 model=embedded_model)
    assert b["this_run"]["engine_calls"] == 0 and b["mean_rollouts"] <= 4
