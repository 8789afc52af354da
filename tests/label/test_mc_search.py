"""The anchored first-error searches (label mc --method anchored, anchored-scan): exact probes
and rollouts on oracle actors, early stop, the known final answer, store sharing with the
other methods, and the other methods' requests unchanged."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from criticlab.cache import CachedModel
from criticlab.errors import ConfigError
from criticlab.jobs import run_key
from criticlab.label.mc import (
    MCConfig,
    StepLabel,
    binary_first_error,
    continue_prompt,
    first_zero,
    label_example,
    label_mc,
    rollout_labels,
)
from criticlab.label.mc_search import anchored_first_error, chunk_ends, probe
from criticlab.models.base import GenerateConfig, Message
from criticlab.models.scripted import ScriptedModel
from criticlab.store import Store
from criticlab.types import Example, Gold, Solution
from tests.label.test_mc import DATA, PROBLEM, STEPS, Q, prefix_len

N = 8
CFG = GenerateConfig(temperature=0.8, seed=0, max_tokens=32)
Hit = Callable[[int, int], bool]
"""``hit(prefix index, sample seed)``: whether that rollout reaches the reference (72)."""


def model_of(hit: Hit) -> ScriptedModel:
    """A scripted actor: the rollout of prefix i drawn with seed s reaches 72 iff hit(i, s)."""

    def script(messages: Sequence[Message], config: GenerateConfig, j: int) -> str:
        i = prefix_len(messages) - 1
        assert config.seed is not None
        value = 72 if hit(i, config.seed + j) else 70
        return f"Step {i + 2}: so it is {value}.\nThe answer is {value}."

    return ScriptedModel(script, name="oracle")


def oracle(first_error: int, *, last: int | None = None) -> ScriptedModel:
    """Every rollout from a prefix before ``first_error`` reaches the reference, none after;
    the prefix ``last`` (a solution whose final answer is right) always reaches it."""
    return model_of(lambda i, s: i < first_error or i == last)


def steps_of(k: int) -> tuple[str, ...]:
    return tuple(f"Step text {j}." for j in range(k))


def example(k: int, answer: str | None, steps: Sequence[str] | None = None) -> Example:
    return Example(PROBLEM, Solution(tuple(steps or steps_of(k)), final_answer=answer),
                   Gold(None, final_answer_correct=answer == "72"))


def asked(model: ScriptedModel) -> list[tuple[int, int, int | None]]:
    """(prefix index, n, seed) of every request the engine saw."""
    return [(prefix_len(m) - 1, c.n, c.seed) for m, c in model.requests]


def test_chunks_double_up_to_n() -> None:
    assert [chunk_ends(n) for n in (1, 2, 3, 4, 5, 8, 16)] == [
        [1], [1, 2], [1, 2, 3], [1, 2, 4], [1, 2, 4, 5], [1, 2, 4, 8], [1, 2, 4, 8, 16]]


# (K, true first error, prefixes probed in order, rollouts) for a wrong final answer, N = 8:
# a good prefix costs 1 rollout (the first succeeds), a bad one all 8
CASES = [
    (1, 0, [], 0),                 # one step and a wrong answer: that step, no rollout
    (2, 0, [0], 8),
    (2, 1, [0], 1),                # the last step: every earlier prefix can still reach it
    (3, 0, [1, 0], 16),
    (3, 2, [1], 1),
    (4, 0, [1, 0], 16),
    (4, 2, [1, 2], 9),
    (4, 3, [1, 2], 2),
    (10, 0, [4, 2, 1, 0], 32),
    (10, 4, [4, 2, 3], 10),
    (10, 9, [4, 7, 8], 3),
    (13, 6, [6, 3, 5], 10),
    (16, 15, [7, 11, 13, 14], 4),
]


@pytest.mark.parametrize(("k", "error", "probes", "rollouts"), CASES)
async def test_wrong_answer_exact_probes_and_rollouts(
        k: int, error: int, probes: list[int], rollouts: int) -> None:
    model = oracle(error)
    row = await label_example(model, example(k, "70"), "anchored", N, CFG)
    assert row["first_error"] == error and row["method"] == "anchored"
    assert [lab["index"] for lab in row["labels"]] == probes
    assert row["rollouts"] == rollouts == sum(len(lab["answers"]) for lab in row["labels"])
    assert len(probes) <= math.ceil(math.log2(k))  # not ceil(log2(K+1)): the end is known
    # a good probe: one request of 1; a bad one: chunks 1, 1, 2, 4 with seeds 0, 1, 2, 4
    want = [r for i in probes for r in ([(i, 1, 0)] if i < error else
                                        [(i, 1, 0), (i, 1, 1), (i, 2, 2), (i, 4, 4)])]
    assert asked(model) == want
    assert row["hard"] == [int(i < error) if i in probes else None for i in range(k)]
    # good probes stopped early: their soft label is not an estimate, so the row has None
    assert row["soft"] == [(None if i < error else 0.0) if i in probes else None
                           for i in range(k)]
    assert all(lab.get("stopped", False) == (lab["index"] < error) for lab in row["labels"])


@pytest.mark.parametrize("k", range(1, 17))
async def test_same_first_error_as_per_step_on_a_consistent_oracle(k: int) -> None:
    for error in range(k):
        per_step = await rollout_labels(oracle(error), PROBLEM, steps_of(k), N, CFG)
        first, probes = await anchored_first_error(oracle(error), PROBLEM, steps_of(k), N,
                                                   CFG, answer_right=False)
        binary, b_probes = await binary_first_error(oracle(error), PROBLEM, steps_of(k), N, CFG)
        assert first == first_zero(per_step) == binary == error
        assert len(probes) <= math.ceil(math.log2(k))
        assert len(b_probes) <= math.ceil(math.log2(k + 1))
        assert sum(p.rollouts for p in probes) == sum(1 if p.hard else N for p in probes)
        assert all(p.hard == per_step[p.index].hard for p in probes)
        assert sum(p.rollouts for p in probes) < N * k


@pytest.mark.parametrize("method", ["anchored", "anchored-scan"])
async def test_right_answer_costs_nothing_unless_checked(method: str) -> None:
    for k in (1, 2, 5, 12):
        model = oracle(1, last=k - 1)  # an error at step 1 that the solution recovers from
        row = await label_example(model, example(k, "72"), method, N, CFG)
        assert row["answer_correct"] and row["first_error"] is None
        assert row["rollouts"] == 0 and row["labels"] == [] and model.requests == []


@pytest.mark.parametrize(("k", "error", "probes", "rollouts"), [
    (1, 0, [], 0),
    (2, 0, [0], 8),
    (2, 1, [0], 1),
    (4, 2, [0, 1, 2], 10),
    (4, 3, [0, 1, 2], 3),          # every earlier prefix good: the last step, unprobed
    (10, 0, [0], 8),
    (10, 4, [0, 1, 2, 3, 4], 12),
])
async def test_scan_wrong_answer_exact_probes_and_rollouts(
        k: int, error: int, probes: list[int], rollouts: int) -> None:
    model = oracle(error)
    row = await label_example(model, example(k, "70"), "anchored-scan", N, CFG)
    assert row["first_error"] == error and row["method"] == "anchored-scan"
    assert [lab["index"] for lab in row["labels"]] == probes and row["rollouts"] == rollouts
    # one request per good prefix, in order; the bad one in chunks
    assert asked(model) == [(i, 1, 0) for i in probes if i < error] + (
        [(error, 1, 0), (error, 1, 1), (error, 2, 2), (error, 4, 4)] if error < k - 1 else [])


async def test_scan_names_per_steps_first_zero_on_any_actor() -> None:
    rng = random.Random(0)
    for trial in range(200):
        k = rng.randint(1, 12)
        table = {(i, s): rng.random() < p for i, p in enumerate(
            rng.choice([0.0, 0.05, 0.3, 0.9, 1.0]) for _ in range(k)) for s in range(N)}
        hit: Hit = lambda i, s, table=table: table[i, s]  # noqa: E731
        for right in (False, True):
            answer = "72" if right else "70"
            row = await label_example(model_of(hit), example(k, answer), "anchored-scan", N,
                                      CFG, check_right=True)
            zero = first_zero(await rollout_labels(model_of(hit), PROBLEM, steps_of(k)[:-1],
                                                   N, CFG))
            assert row["first_error"] == (zero if zero is not None else
                                          None if right else k - 1), trial
            per_step = await rollout_labels(model_of(hit), PROBLEM, steps_of(k), N, CFG)
            assert all(lab["hard"] == per_step[lab["index"]].hard for lab in row["labels"])


@pytest.mark.parametrize(("method", "k", "error", "probes", "rollouts"), [
    ("anchored-scan", 1, None, [], 0),     # one step, right answer: nothing to check
    ("anchored-scan", 2, None, [0], 1),
    ("anchored-scan", 6, None, [0, 1, 2, 3, 4], 5),  # all but the last, one rollout each
    ("anchored-scan", 6, 0, [0], 8),
    ("anchored-scan", 6, 3, [0, 1, 2, 3], 11),  # an error the solution recovers from
    ("anchored-scan", 6, 4, [0, 1, 2, 3, 4], 12),
    ("anchored", 1, None, [], 0),
    ("anchored", 2, None, [0], 1),
    ("anchored", 6, None, [2, 4], 2),   # bisecting prefixes 0..4: none fails
    ("anchored", 6, 0, [2, 1, 0], 24),
    ("anchored", 6, 3, [2, 4, 3], 17),
    ("anchored", 6, 4, [2, 4, 3], 10),
])
async def test_check_right_searches_all_but_the_last_prefix(
        method: str, k: int, error: int | None, probes: list[int], rollouts: int) -> None:
    model = oracle(k if error is None else error, last=k - 1)
    row = await label_example(model, example(k, "72"), method, N, CFG, check_right=True)
    assert row["first_error"] == error
    assert [lab["index"] for lab in row["labels"]] == probes and row["rollouts"] == rollouts
    assert k - 1 not in {i for i, _, _ in asked(model)}  # the last prefix is known good
    per_step = await rollout_labels(oracle(k if error is None else error, last=k - 1),
                                    PROBLEM, steps_of(k)[: k - 1], N, CFG)
    assert row["first_error"] == first_zero(per_step)


@pytest.mark.parametrize(("method", "error", "want", "probes"), [
    ("anchored", 3, None, [1, 2]), ("anchored", 1, 1, [1, 0]), ("anchored", 0, 0, [1, 0]),
    ("anchored-scan", 3, None, [0, 1, 2]), ("anchored-scan", 2, 2, [0, 1, 2])])
async def test_no_final_answer_searches_every_prefix(
        method: str, error: int, want: int | None, probes: list[int]) -> None:
    steps = ("We add the apples.", "Then we add the pears.", "So we are done.")
    row = await label_example(oracle(error), example(3, None, steps), method, N, CFG)
    assert row["final_answer"] is None and not row["answer_correct"]
    assert row["first_error"] == want
    assert [lab["index"] for lab in row["labels"]] == probes


async def test_early_stop_draws_the_first_samples_of_the_full_request() -> None:
    # rollouts reach 72 on even seeds only; from seed 1 the first one misses, the second hits
    even = model_of(lambda i, s: i < 2 and s % 2 == 0)
    cfg = replace(CFG, seed=1)
    good = await probe(even, PROBLEM, STEPS, 0, N, cfg)
    assert (good.hard, good.rollouts, good.stopped, good.soft) == (1, 2, True, 0.5)
    assert good.answers == ("70", "72") and asked(even) == [(0, 1, 1), (0, 1, 2)]
    bad = await probe(even, PROBLEM, STEPS, 2, N, cfg)
    assert (bad.hard, bad.rollouts, bad.stopped, bad.soft) == (0, N, False, 0.0)
    assert asked(even)[2:] == [(2, 1, 1), (2, 1, 2), (2, 2, 3), (2, 4, 5)]
    full = (await rollout_labels(even, PROBLEM, STEPS[:1], N, cfg))[0]
    assert full.answers[:2] == good.answers  # the same rollouts as the one N-sample request
    # a success only in the last chunk draws all N: its soft label is the exact one
    late = model_of(lambda i, s: s == 6)
    lab = await probe(late, PROBLEM, STEPS, 0, N, CFG)
    assert (lab.hard, lab.rollouts, lab.stopped, lab.soft) == (1, N, False, 1 / N)
    off = await probe(late, PROBLEM, STEPS, 0, N, CFG, early_stop=False)
    assert (off.hard, off.soft, off.answers, off.stopped) == (1, lab.soft, lab.answers, False)
    assert len(late.requests) == 5  # 4 chunks, then the one request of N


async def test_the_store_shares_rollouts_with_the_other_methods(tmp_path: Path) -> None:
    steps = steps_of(10)
    ex = example(10, "70", steps)
    # anchored first: per-step then asks the engine only for the samples it did not draw
    engine = oracle(4)
    with Store(tmp_path / "a.sqlite") as store:
        model = CachedModel(engine, store)
        row = await label_example(model, ex, "anchored", N, CFG)
        assert asked(engine) == [(4, 1, 0), (4, 1, 1), (4, 2, 2), (4, 4, 4), (2, 1, 0),
                                 (3, 1, 0)]  # the same engine requests as without a store
        assert model.stats.calls == 6 and row["rollouts"] == N + 2
        before = len(engine.requests)
        per_step = await label_example(model, ex, "per-step", N, CFG)
        assert per_step["first_error"] == row["first_error"] == 4
        assert asked(engine)[before:] == [(i, N, 0) for i in (0, 1)] + [
            (i, N - 1, 1) for i in (2, 3)] + [(i, N, 0) for i in range(5, 10)]
        for lab in row["labels"]:
            full = per_step["labels"][lab["index"]]["answers"]
            assert full[: len(lab["answers"])] == lab["answers"]
        # and the anchored search again, or the binary one, makes no engine call
        calls = model.stats.calls
        again = await label_example(model, ex, "anchored", N, CFG)
        binary = await label_example(model, ex, "binary", N, CFG)
        assert model.stats.calls == calls
        assert [(x["index"], x["answers"]) for x in again["labels"]] == [
            (x["index"], x["answers"]) for x in row["labels"]]
        assert binary["first_error"] == 4
    # per-step first: the anchored search is answered by the store
    with Store(tmp_path / "b.sqlite") as store:
        model = CachedModel(oracle(4), store)
        await label_example(model, ex, "per-step", N, CFG)
        calls = model.stats.calls
        row2 = await label_example(model, ex, "anchored", N, CFG)
        assert model.stats.calls == calls
        assert row2["first_error"] == 4 and row2["rollouts"] == row["rollouts"]


async def test_the_default_methods_send_the_requests_they_always_sent() -> None:
    want = [((Message("user", continue_prompt(Q, STEPS[: i + 1])),), replace(CFG, n=N))
            for i in range(len(STEPS))]
    model = oracle(2)
    row = await label_example(model, example(4, "70", STEPS), "per-step", N, CFG)
    assert model.requests == want
    assert set(row) == {"id", "problem", "reference_answer", "steps", "final_answer",
                        "answer_correct", "method", "first_error", "hard", "soft", "labels",
                        "has_gold", "gold_first_error", "rollouts", "usage"}
    assert all(set(lab) == {"index", "hard", "soft", "answers", "usage"}
               for lab in row["labels"])
    model = oracle(2)
    row = await label_example(model, example(4, "70", STEPS), "binary", N, CFG)
    assert model.requests == [want[2], want[1]] and row["rollouts"] == 2 * N
    assert row["soft"] == [None, 1.0, 0.0, None]
    assert StepLabel.from_dict(row["labels"][0]).stopped is False


def test_config_keys_of_the_default_methods_are_unchanged(tmp_path: Path) -> None:
    def old_key(method: str) -> str:
        ident = {"data": "d", "actor": "embedded", "base_url": None, "rollouts": 8,
                 "temperature": 0.8, "max_tokens": 512, "seed": 0, "method": method}
        blob = json.dumps(ident, sort_keys=True, default=str).encode()
        return f"label-mc@{hashlib.sha256(blob).hexdigest()[:16]}"

    for method in ("per-step", "binary", "anchored", "anchored-scan"):
        assert run_key(MCConfig("d", tmp_path, method=method)) == old_key(method)
    checked = MCConfig("d", tmp_path, method="anchored", check_right=True)
    assert run_key(checked) != old_key("anchored")
    with pytest.raises(ConfigError, match="--check-right applies to --method anchored"):
        MCConfig("d", tmp_path, method="binary", check_right=True)
    MCConfig("d", tmp_path, method="anchored-scan", check_right=True)


def test_label_mc_anchored_runs_resumes_and_reuses_the_store(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text(json.dumps(DATA))
    calls: list[int] = []

    def script(messages: Sequence[Message], config: GenerateConfig, i: int) -> str:
        calls.append(1)
        if "Weng" in messages[-1].content:
            return "The answer is 10." if prefix_len(messages) != 2 else "So 9."
        return "The answer is 72." if prefix_len(messages) <= 2 else "So 70."

    out = tmp_path / "run"
    m = label_mc(MCConfig(str(data), out, rollouts=N, method="anchored"),
                 model=ScriptedModel(script))
    assert m["first_errors"] == {"wrong": 2, "right": None} and m["agreement"] == 100.0
    # "wrong" (K=4): prefix 1 good (1 rollout), prefix 2 bad (8); "right": none
    assert m["mean_rollouts"] == (1 + N) / 2 and m["mean_rollouts_wrong"] == 1 + N
    assert m["mean_rollouts_right"] == 0 and m["early_stopped"] == 1
    assert m["this_run"]["engine_calls"] == 5 and m["method"] == "anchored"
    rows = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    assert rows[0]["hard"] == [None, 1, 0, None] and rows[0]["soft"] == [None, None, 0.0, None]
    assert rows[0]["labels"][0]["stopped"] is True and "stopped" not in rows[0]["labels"][1]
    again = label_mc(MCConfig(str(data), out, rollouts=N, method="anchored"),
                     model=ScriptedModel(script))
    assert again["this_run"] == {"engine_calls": 0, "store_hits": 0, "resumed_items": 2}
    # --check-right is its own variant: "right" is scanned (prefixes 0, 1), "wrong" read
    # from the store
    n_calls = len(calls)
    c = label_mc(MCConfig(str(data), out, rollouts=N, method="anchored", check_right=True),
                 model=ScriptedModel(script))
    assert c["first_errors"] == {"wrong": 2, "right": 1} and c["check_right"] is True
    assert c["mean_rollouts_right"] == 1 + N and c["this_run"]["resumed_items"] == 0
    assert len(calls) - n_calls == 1 + N  # only the new prefixes of "right" were drawn
    # per-step in the same directory draws only what the searches did not
    p = label_mc(MCConfig(str(data), out, rollouts=N), model=ScriptedModel(script))
    assert p["first_errors"] == {"wrong": 2, "right": 1}
    assert p["this_run"]["store_hits"] == 1 + N + 1 + N


def test_label_mc_anchored_scan_after_per_step_reads_the_store(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text(json.dumps(DATA))

    def script(messages: Sequence[Message], config: GenerateConfig, i: int) -> str:
        if "Weng" in messages[-1].content:
            return "The answer is 10." if prefix_len(messages) != 2 else "So 9."
        return "The answer is 72." if prefix_len(messages) <= 2 else "So 70."

    out = tmp_path / "run"
    s = label_mc(MCConfig(str(data), out, rollouts=N, method="anchored-scan",
                          check_right=True), model=ScriptedModel(script))
    # "wrong": prefixes 0, 1 good (1 rollout each), 2 bad (8 in 4 requests); "right": 0
    # good, 1 bad
    assert s["first_errors"] == {"wrong": 2, "right": 1}
    assert s["mean_rollouts_wrong"] == 2 + N and s["mean_rollouts_right"] == 1 + N
    assert s["this_run"]["engine_calls"] == 6 + 5 and s["early_stopped"] == 3
    p = label_mc(MCConfig(str(data), out, rollouts=N), model=ScriptedModel(script))
    assert p["first_errors"] == s["first_errors"]
    assert p["this_run"]["store_hits"] == 2 + N + 1 + N  # what the scan drew, shared
    again = label_mc(MCConfig(str(data), tmp_path / "fresh", rollouts=N), model=ScriptedModel(
        script))
    assert again["first_errors"] == p["first_errors"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["anchored", "anchored-scan"])
def test_label_mc_anchored_end_to_end_on_the_embedded_model(
        tmp_path: Path, embedded_model, method: str) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "d.jsonl"
    recs = [{"id": "a", "problem": Q, "reference_answer": "72", "label": 1,
             "final_answer_correct": False, "generator": "inject",
             "steps": ["Natalia sold 48/2 = 24 clips in May.",
                       "Natalia sold 48+24 = 70 clips altogether.",
                       "The answer is 70."]},
            {"id": "b", "problem": Q, "reference_answer": "72", "label": -1,
             "final_answer_correct": True, "generator": "reference",
             "steps": ["Natalia sold 48/2 = 24 clips in May.",
                       "Natalia sold 48+24 = 72 clips altogether.", "The answer is 72."]}]
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "run"
    config = MCConfig(str(data), out, rollouts=4, max_tokens=24, method=method)
    m = label_mc(config, model=embedded_model)
    assert m["n"] == 2 and m["complete"] and m["errors"] == 0
    rows = {r["id"]: r for r in map(json.loads, (out / "labels.jsonl").read_text().splitlines())}
    a, b = rows["a"], rows["b"]
    assert b["answer_correct"] and b["rollouts"] == 0 and b["first_error"] is None
    assert not a["answer_correct"] and a["first_error"] in (0, 1, 2)
    # K=3, wrong answer: at most 2 probes over prefixes 0..1, never prefix 2
    assert 1 <= len(a["labels"]) <= 2 and all(x["index"] < 2 for x in a["labels"])
    assert all(1 <= len(x["answers"]) <= 4 for x in a["labels"])
    assert a["rollouts"] == sum(len(x["answers"]) for x in a["labels"]) == 2 * m[
        "mean_rollouts"]
    assert m["this_run"]["engine_calls"] >= len(a["labels"])
    assert all(x.get("stopped", False) == (x["hard"] == 1 and len(x["answers"]) < 4)
               for x in a["labels"])
    assert label_mc(config, model=embedded_model)["this_run"]["engine_calls"] == 0
