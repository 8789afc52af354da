"""PRM critic: tiny models built here (random weights, a BPE tokenizer trained on a few
strings), saved to a temporary folder and loaded through the hf backend like a real PRM."""

from __future__ import annotations

from pathlib import Path

import pytest

from criticlab.critics.prm import (
    PRMCritic,
    _positions,
    choose_threshold,
    critique_from_scores,
    detect_task,
    with_threshold,
)
from criticlab.errors import ConfigError
from criticlab.metrics import processbench
from criticlab.types import Critique, Example, Gold, Problem, Result, Solution

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


def _separator_tokens(critic: PRMCritic, text: str) -> list[int]:
    """Independently of the critic: the token holding the last character of each separator."""
    enc = critic.tokenizer(text, return_offsets_mapping=True)
    _, ends = critic.render(QUESTION, STEPS)
    out = []
    for end in ends:
        (pos,) = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a <= end < b]
        out.append(pos)
    return out


def _reference_logits(critic: PRMCritic, text: str):  # type: ignore[no-untyped-def]
    import torch

    ids = critic.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return ids[0], critic.model(input_ids=ids).logits[0]


async def test_token_classification_prm(token_cls_dir):
    import torch

    critic = PRMCritic(token_cls_dir, threshold=0.5)
    assert critic.kind == "token-classification" and critic.name == f"prm:{token_cls_dir}"
    scores, n_tokens = critic.score_steps(QUESTION, STEPS)
    assert len(scores) == len(STEPS) and all(0.0 <= s <= 1.0 for s in scores)

    text, _ = critic.render(QUESTION, STEPS)
    assert text == QUESTION + "\n\n" + "\n\n".join(STEPS) + "\n\n"
    ids, logits = _reference_logits(critic, text)
    assert n_tokens == len(ids)
    positions = _separator_tokens(critic, text)
    assert all("\n" in critic.tokenizer.decode([int(ids[p])]) for p in positions)
    want = torch.softmax(logits[positions], dim=-1)[:, 1]
    assert scores == pytest.approx(want.tolist(), abs=1e-6)

    mid = sorted(scores)[1]  # a threshold with steps on both sides
    critic.threshold = mid
    c = await critic.critique(Problem("p", QUESTION), Solution(STEPS))
    assert [s.score for s in c.steps] == pytest.approx(scores)
    assert c.first_error == next(i for i, s in enumerate(scores) if s < mid)
    assert c.verdict == "incorrect" and c.score == pytest.approx(min(scores))
    assert c.usage.prompt_tokens == n_tokens and c.usage.calls == 1 and c.critic == critic.name

    none = await critic.critique(Problem("p", QUESTION), Solution(()))
    assert none.verdict is None and not none.steps


def test_causal_lm_prm_math_shepherd_style(causal_dir, tokenizer):
    import torch

    critic = PRMCritic(causal_dir, step_tag=" ки", good_token="+", bad_token="-",
                       prefix="{question} ", step_format="Step {n}: {step}", joiner="\n")
    assert critic.kind == "causal-lm"
    scores, _ = critic.score_steps(QUESTION, STEPS)
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
    critic = PRMCritic(tmp_path)
    scores, _ = critic.score_steps(QUESTION, STEPS)
    text, _ = critic.render(QUESTION, STEPS)
    ids = critic.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = peft_model.eval()(input_ids=ids).logits[0]
    want = torch.softmax(logits[_separator_tokens(critic, text)], dim=-1)[:, 1]
    assert scores == pytest.approx(want.tolist(), abs=1e-6)
    plain, _ = PRMCritic(token_cls_dir).score_steps(QUESTION, STEPS)
    assert max(abs(a - b) for a, b in zip(scores, plain, strict=True)) > 1e-4


def test_detect_task_and_config_errors(token_cls_dir, causal_dir, tokenizer, tmp_path):
    assert detect_task(token_cls_dir) == "token-classification"
    assert detect_task(causal_dir) == "causal-lm"
    assert detect_task("embedded") == "causal-lm"
    with pytest.raises(ConfigError, match="unknown PRM kind"):
        PRMCritic(causal_dir, kind="regression")
    with pytest.raises(ConfigError, match="not one"):
        PRMCritic(causal_dir, good_token="apples and")
    from transformers import LlamaForTokenClassification

    bad = tmp_path / "three-labels"
    LlamaForTokenClassification(_llama_config(tokenizer, num_labels=3)).save_pretrained(bad)
    tokenizer.save_pretrained(bad)
    with pytest.raises(ConfigError, match="1 or 2 labels"):
        PRMCritic(bad)


def test_critique_uses_the_critics_threshold(token_cls_dir, monkeypatch):
    import asyncio

    critic = PRMCritic(Path(token_cls_dir), threshold=0.8)
    monkeypatch.setattr(critic, "score_steps", lambda q, s: ([0.9, 0.79, 0.1], 12))
    c: Critique = asyncio.run(critic.critique(Problem("p", "q"), Solution(("a", "b", "c"))))
    assert c.first_error == 1 and c.score == 0.1 and c.usage.prompt_tokens == 12
