"""PRM critic and the PRM engine (``prm:DIR``): tiny models built here (random weights, a BPE
tokenizer trained on a few strings), saved to a temporary folder and loaded through the hf
backend like a real PRM."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from criticlab.critics.prm import (
    PRMCritic,
    choose_threshold,
    critique_from_scores,
    with_threshold,
)
from criticlab.errors import ConfigError
from criticlab.metrics import processbench
from criticlab.models.base import StepScores
from criticlab.models.prm import PRMModel, _positions, detect_task
from criticlab.types import Critique, Example, Gold, Problem, Result, Solution, Usage

QUESTION = "Tom has 3 apples and buys 4 more. How many apples?"
STEPS = ("Tom starts with 3 apples.", "He buys 4 more: 3 + 4 = 8.", "The answer is 8.")
CORPUS = [QUESTION, *STEPS, "Step 1: 2 + 2 = 4 ки\nStep 2: + - ки", "\n\n".join(STEPS)] * 3


# --- pure logic (no model) ------------------------------------------------------------


def test_threshold_logic_is_exact():
    c = critique_from_scores([0.9, 0.5, 0.3, 0.7, 0.2], 0.5, critic="prm:x")
    assert [s.verdict for s in c.steps] == ["correct", "correct", "incorrect", "correct",
                                            "incorrect"]  # 0.5 is not below 0.5
    assert [s.score for s in c.steps] == [0.9, 0.5, 0.3, 0.7, 0.2]
    assert c.first_error == 2 and c.verdict == "incorrect" and c.score == 0.2
    ok = critique_from_scores([0.9, 0.6], 0.5)
    assert ok.first_error is None and ok.verdict == "correct" and ok.score == 0.6
    empty = critique_from_scores([], 0.5)
    assert empty.verdict is None and empty.score is None


def test_with_threshold_rejudges_without_the_model():
    c = critique_from_scores([0.9, 0.45, 0.2], 0.4, critic="prm:x")
    assert c.first_error == 2
    again = with_threshold(c, 0.5)
    assert again.first_error == 1 and again.critic == "prm:x" and again.score == 0.2
    assert with_threshold(again, 0.1).verdict == "correct"


def test_choose_threshold_against_a_hand_computation():
    scores = [[0.9, 0.2], [0.8, 0.62], [0.45, 0.7], [0.95, 0.85]]
    gold = [1, None, 0, -1]  # -1 and None both mean "every step right"
    # midpoints: 0.325, 0.535, 0.66, 0.75, 0.825, 0.875, 0.925
    # t=0.325: item 2 predicted -1 (gold 0): acc_err 50, acc_cor 100 -> F1 66.7
    # t=0.535: all four right -> F1 100; t=0.66: item 1 predicted 1 -> F1 66.7
    assert choose_threshold(scores, gold) == pytest.approx(0.535)
    # the F1 it maximised is the one metrics.processbench reports at that threshold
    results = [
        Result(Example(Problem(str(i), ""), gold=Gold(first_error=None if g in (None, -1)
                                                       else g, final_answer_correct=g in (None, -1))),
               critique_from_scores(s, 0.535))
        for i, (s, g) in enumerate(zip(scores, gold, strict=True))
    ]
    assert processbench(results)["f1"] == 100.0


def _f1_at(scores, gold, t):  # type: ignore[no-untyped-def]
    results = [Result(Example(Problem(str(i), ""), gold=Gold(
        first_error=g, final_answer_correct=g is None)), critique_from_scores(s, t))
        for i, (s, g) in enumerate(zip(scores, gold, strict=True))]
    return processbench(results)["f1"]


def test_choose_threshold_equals_a_brute_force_search():
    import itertools
    import random

    rng = random.Random(7)
    scores = [[round(rng.random(), 2) for _ in range(rng.randint(1, 6))] for _ in range(40)]
    gold = [rng.choice([None, 0, 1, 2]) for _ in scores]
    distinct = sorted({s for item in scores for s in item})
    candidates = [(a + b) / 2 for a, b in itertools.pairwise(distinct)]
    f1s = [_f1_at(scores, gold, t) for t in candidates]
    best = candidates[f1s.index(max(f1s))]
    assert max(f1s) > 0 and choose_threshold(scores, gold) == best


def test_choose_threshold_ties_and_degenerate_input():
    # both 0.3 and 0.5 split the items the same way: the smaller wins
    assert choose_threshold([[0.2], [0.4], [0.6]], [0, None, None]) == pytest.approx(0.3)
    assert choose_threshold([[0.7, 0.7]], [None]) == 0.5
    with pytest.raises(ValueError):
        choose_threshold([[0.1]], [])


def test_positions_read_the_separators_last_token():
    # tokens: [BOS] "ab" "\n" "\n" "cd" "\n\n" [EOS]; text "ab\n\ncd\n\n"
    offsets = [[0, 0], [0, 2], [2, 3], [3, 4], [4, 6], [6, 8], [0, 0]]
    special = [1, 0, 0, 0, 0, 0, 1]
    assert _positions(offsets, special, [3, 7]) == [3, 5]
    # a tokenizer that drops whitespace: the step's last token
    assert _positions([[0, 2], [4, 6]], [0, 0], [3, 7]) == [0, 1]


# --- tiny real models -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>",
                                  pad_token="<pad>")
    tok.add_tokens(["ки"])
    return tok


def _llama_config(tokenizer, **kw):  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id, **kw)


@pytest.fixture(scope="module")
def token_cls_dir(tokenizer, tmp_path_factory):  # type: ignore[no-untyped-def]
    import torch
    from transformers import LlamaForTokenClassification

    torch.manual_seed(0)
    model = LlamaForTokenClassification(_llama_config(tokenizer, num_labels=2))
    folder = tmp_path_factory.mktemp("prm-tokcls")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def causal_dir(tokenizer, tmp_path_factory):  # type: ignore[no-untyped-def]
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(1)
    model = LlamaForCausalLM(_llama_config(tokenizer))
    folder = tmp_path_factory.mktemp("prm-causal")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _separator_tokens(critic: PRMModel, text: str) -> list[int]:
    """Independently of the engine: the token holding the last character of each separator."""
    enc = critic.tokenizer(text, return_offsets_mapping=True)
    _, ends = critic.render(QUESTION, STEPS)
    out = []
    for end in ends:
        (pos,) = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a <= end < b]
        out.append(pos)
    return out


def _reference_logits(critic: PRMModel, text: str):  # type: ignore[no-untyped-def]
    import torch

    ids = critic.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return ids[0], critic.model(input_ids=ids).logits[0]


async def test_token_classification_prm(token_cls_dir):
    import torch

    engine = PRMModel(token_cls_dir)
    assert engine.kind == "token-classification" and engine.name == f"prm:{token_cls_dir}"
    scores, n_tokens = engine.score(QUESTION, STEPS)
    assert len(scores) == len(STEPS) and all(0.0 <= s <= 1.0 for s in scores)

    text, _ = engine.render(QUESTION, STEPS)
    assert text == QUESTION + "\n\n" + "\n\n".join(STEPS) + "\n\n"
    ids, logits = _reference_logits(engine, text)
    assert n_tokens == len(ids)
    positions = _separator_tokens(engine, text)
    assert all("\n" in engine.tokenizer.decode([int(ids[p])]) for p in positions)
    want = torch.softmax(logits[positions], dim=-1)[:, 1]
    assert scores == pytest.approx(want.tolist(), abs=1e-6)
    scored = await engine.score_steps(QUESTION, STEPS)
    assert scored == StepScores(tuple(scores), Usage(prompt_tokens=n_tokens, calls=1))

    mid = sorted(scores)[1]  # a threshold with steps on both sides
    critic = PRMCritic(engine, threshold=mid)
    c = await critic.critique(Problem("p", QUESTION), Solution(STEPS))
    assert [s.score for s in c.steps] == pytest.approx(scores)
    assert c.first_error == next(i for i, s in enumerate(scores) if s < mid)
    assert c.verdict == "incorrect" and c.score == pytest.approx(min(scores))
    assert c.usage.prompt_tokens == n_tokens and c.usage.calls == 1 and c.critic == engine.name

    none = await critic.critique(Problem("p", QUESTION), Solution(()))
    assert none.verdict is None and not none.steps


def test_causal_lm_prm_math_shepherd_style(causal_dir, tokenizer):
    import torch

    critic = PRMModel(causal_dir, step_tag=" ки", good_token="+", bad_token="-",
                      prefix="{question} ", step_format="Step {n}: {step}", joiner="\n")
    assert critic.kind == "causal-lm"
    # another input format is another cache key
    assert critic.name.startswith(f"prm:{causal_dir}#") and critic.name != f"prm:{causal_dir}"
    scores, _ = critic.score(QUESTION, STEPS)
    text, _ = critic.render(QUESTION, STEPS)
    assert text.endswith("Step 2: He buys 4 more: 3 + 4 = 8. ки\nStep 3: The answer is 8. ки")
    # Math-Shepherd's reference: logits at every "ки" token, softmax over (good, bad), [0]
    ids, logits = _reference_logits(critic, text)
    tag = tokenizer.convert_tokens_to_ids("ки")
    good, bad = (tokenizer.encode(t, add_special_tokens=False)[0] for t in "+-")
    want = torch.softmax(logits[ids == tag][:, [good, bad]], dim=-1)[:, 0]
    assert len(scores) == 3 and scores == pytest.approx(want.tolist(), abs=1e-6)


def test_token_classification_prm_as_a_lora_adapter(token_cls_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForTokenClassification

    base = AutoModelForTokenClassification.from_pretrained(token_cls_dir)
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"],
                                                 task_type="TOKEN_CLS"))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.1)
    peft_model.save_pretrained(tmp_path)
    assert detect_task(tmp_path) == "token-classification"
    critic = PRMModel(tmp_path)
    scores, _ = critic.score(QUESTION, STEPS)
    text, _ = critic.render(QUESTION, STEPS)
    ids = critic.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = peft_model.eval()(input_ids=ids).logits[0]
    want = torch.softmax(logits[_separator_tokens(critic, text)], dim=-1)[:, 1]
    assert scores == pytest.approx(want.tolist(), abs=1e-6)
    plain, _ = PRMModel(token_cls_dir).score(QUESTION, STEPS)
    assert max(abs(a - b) for a, b in zip(scores, plain, strict=True)) > 1e-4


def test_detect_task_and_config_errors(token_cls_dir, causal_dir, tokenizer, tmp_path):
    assert detect_task(token_cls_dir) == "token-classification"
    assert detect_task(causal_dir) == "causal-lm"
    assert detect_task("embedded") == "causal-lm"
    with pytest.raises(ConfigError, match="unknown PRM kind"):
        PRMModel(causal_dir, kind="regression")
    with pytest.raises(ConfigError, match="not one"):
        PRMModel(causal_dir, good_token="apples and")
    from transformers import LlamaForTokenClassification

    bad = tmp_path / "three-labels"
    LlamaForTokenClassification(_llama_config(tokenizer, num_labels=3)).save_pretrained(bad)
    tokenizer.save_pretrained(bad)
    with pytest.raises(ConfigError, match="1 or 2 labels"):
        PRMModel(bad)
    # a PRM writes no text, and a text model scores no steps
    with pytest.raises(ConfigError, match=r"scores steps .* and does not write text"):
        asyncio.run(PRMModel(causal_dir).generate([], None))  # type: ignore[arg-type]
    from criticlab.models.scripted import ScriptedModel

    with pytest.raises(ConfigError, match="does not score steps"):
        PRMCritic(ScriptedModel(["x"]))


class FixedScorer:
    """A step scorer with fixed scores, recording its requests."""

    def __init__(self, scores: list[float], name: str = "fixed") -> None:
        self.scores, self.name, self.requests = scores, name, []  # type: ignore[var-annotated]

    async def score_steps(self, question, steps):  # type: ignore[no-untyped-def]
        self.requests.append((question, tuple(steps)))
        return StepScores(tuple(self.scores), Usage(prompt_tokens=12, calls=1))


def test_critique_uses_the_critics_threshold():
    critic = PRMCritic(FixedScorer([0.9, 0.79, 0.1]), threshold=0.8)
    c: Critique = asyncio.run(critic.critique(Problem("p", "q"), Solution(("a", "b", "c"))))
    assert c.first_error == 1 and c.score == 0.1 and c.usage.prompt_tokens == 12
    assert c.critic == "fixed" and critic.scorer.requests == [("q", ("a", "b", "c"))]
    with pytest.raises(Exception, match="gave 2 scores for 3 steps"):
        asyncio.run(PRMCritic(FixedScorer([0.5, 0.5])).critique(
            Problem("p", "q"), Solution(("a", "b", "c"))))


def test_math_shepherd_format_stays_reachable(causal_dir):
    """Math-Shepherd's token ids (648, 387) are beyond the tiny vocabulary: its format, name
    and label ids are checked, and the critic over it."""
    from criticlab.cache import CachedModel

    engine = PRMModel.math_shepherd(causal_dir)
    assert engine.name == f"math-shepherd:{causal_dir}" and engine.label_ids == (648, 387)
    text, _ = engine.render(QUESTION, STEPS[:2])
    assert text == f"{QUESTION} Step 1: {STEPS[0]} ки\nStep 2: {STEPS[1]} ки"
    critic = PRMCritic.math_shepherd(causal_dir, threshold=0.3)
    assert isinstance(critic.scorer, CachedModel) and critic.threshold == 0.3
    assert critic.name == engine.name


# --- through the model layer: the store, the registry, the trainer ---------------------------


def _bench(folder: Path) -> Path:
    """Four items, two of which read the same steps (one engine call for both)."""
    records = [{"id": f"r{i}", "problem": QUESTION, "steps": list(STEPS[: i % 3 + 1]),
                "label": -1 if i % 2 else 0} for i in range(4)]
    path = folder / "bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _verdicts(results):  # type: ignore[no-untyped-def]
    """What a critique says, without its usage (a call or a stored answer)."""
    return [(r.example.problem.id, r.critique.steps, r.critique.first_error,
             r.critique.score, r.critique.critic) for r in results]


def test_an_eval_rerun_reads_the_prm_scores_from_the_store(token_cls_dir, tmp_path):
    from criticlab.evaluate import EvalConfig, evaluate

    bench = _bench(tmp_path)
    config = EvalConfig(benchmark=str(bench), out=tmp_path / "run",
                        critic=f"prm:{token_cls_dir}")
    first = evaluate(config)
    assert first.metrics["this_run"]["engine_calls"] == 3  # r0 and r3 read the same steps
    assert all(r.critique.critic == f"prm:{token_cls_dir}" for r in first.results)
    with sqlite3.connect(tmp_path / "run" / "store.sqlite") as db:
        db.execute("DELETE FROM results")  # the items are not resumed: only scores are stored
        models = {m for (m,) in db.execute("SELECT model FROM responses")}
    assert models == {f"prm:{token_cls_dir}"}
    # without its results file too: a store that lost results the file holds is refused
    (tmp_path / "run" / "results.jsonl").unlink()
    started = time.perf_counter()
    again = evaluate(config)
    seconds = time.perf_counter() - started
    this_run = again.metrics["this_run"]
    assert this_run["engine_calls"] == 0 and this_run["store_hits"] == 4, this_run
    assert this_run.get("resumed_items", 0) == 0
    assert _verdicts(again.results) == _verdicts(first.results)
    assert all(r.critique.usage.calls == 0 and r.critique.usage.cached == 1
               for r in again.results)
    assert again.metrics["processbench"] == first.metrics["processbench"]
    assert seconds < 30
    # a run directory sharing nothing computes them again
    elsewhere = evaluate(EvalConfig(benchmark=str(bench), out=tmp_path / "other",
                                    critic=f"prm:{token_cls_dir}"))
    assert elsewhere.metrics["this_run"]["engine_calls"] == 3
    assert _verdicts(elsewhere.results) == _verdicts(first.results)


def test_a_critique_rerun_reads_the_prm_scores_from_the_store(token_cls_dir, tmp_path):
    from typer.testing import CliRunner

    from criticlab.cli import app

    args = ["critique", str(_bench(tmp_path)), "--critic", f"prm:{token_cls_dir}",
            "--store", str(tmp_path / "s.sqlite"), "--json"]
    first, again = (CliRunner().invoke(app, args) for _ in range(2))
    assert first.exit_code == again.exit_code == 0, (first.output, again.output)
    assert "model calls: 3 (1 answered from the store)" in first.stderr
    assert "model calls: 0 (4 answered from the store)" in again.stderr
    before, after = ([json.loads(line) for line in r.stdout.splitlines()]
                     for r in (first, again))
    assert len(before) == len(after) == 4
    for b, a in zip(before, after, strict=True):
        used, reused = b["critique"].pop("usage"), a["critique"].pop("usage")
        assert reused == {**used, "calls": 0, "cached": 1} and used["prompt_tokens"] > 0
        assert a == b  # the same critiques, but for where the scores came from


def test_the_trainer_and_the_engine_score_alike(causal_dir, monkeypatch):
    """train.prm.step_scores encodes as in training and scores through the engine's own
    computation: on the same checkpoint and input, the very same numbers."""
    from criticlab.models import prm as engine_module
    from criticlab.train.prm import encode_steps, step_scores

    engine = PRMModel(causal_dir, kind="causal-lm", prefix="{question}\n", step_tag="\n")
    ids, positions = engine.encode(QUESTION, STEPS)
    trained_ids, marks = encode_steps(engine.tokenizer, QUESTION, STEPS, "\n")
    assert ids == trained_ids and positions == [i for i, m in enumerate(marks) if m != -100]

    calls = []
    shared = engine_module.score_positions

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("label_ids"))
        return shared(*args, **kwargs)

    monkeypatch.setattr(engine_module, "score_positions", spy)
    trainer = step_scores(engine.model, engine.tokenizer, QUESTION, STEPS, separator="\n")
    scored = asyncio.run(engine.score_steps(QUESTION, STEPS))
    assert list(scored.scores) == trainer and len(trainer) == 3
    assert calls == [engine.label_ids] * 2  # both went through the one function


def test_the_prm_model_spec_and_critic_name(token_cls_dir, tmp_path):
    from criticlab.models.spec import MODEL_KINDS, ModelSpec
    from criticlab.registry import check_names, make_critic, make_model

    spec = f"prm:{token_cls_dir}"
    assert ModelSpec.parse(spec).name == spec == make_model(spec).name
    assert "prm:PATH|HUB_ID" in [k.usage for k in MODEL_KINDS.values()]
    # a model callable that knows no specs still gets the PRM (built by make_model)
    critic = make_critic(spec, lambda: None)  # type: ignore[arg-type,return-value]
    assert isinstance(critic, PRMCritic) and critic.name == spec
    assert isinstance(critic.scorer, PRMModel)
    # names are checked without loading anything: a folder that holds no model passes
    check_names(f"prm:{tmp_path / 'nothing-here'}", "embedded")
    with pytest.raises(ConfigError):
        check_names("prm:", "embedded")
