"""A few real optimizer steps of each trainer on the embedded model (CPU, LoRA), then the
saved model is reloaded and generates."""

from __future__ import annotations

import json
import math

import pytest
import torch

from criticlab.models.hf import load_causal_lm
from criticlab.train.rewards import shaped_reward

pytestmark = pytest.mark.slow
pytest.importorskip("trl")


def lora_b_norm(out) -> float:
    """peft starts every LoRA B matrix at zero, so a non-zero saved B means the step moved it."""
    from safetensors.torch import load_file

    weights = load_file(str(out / "adapter_model.safetensors"))
    bs = [w for k, w in weights.items() if "lora_B" in k]
    assert bs
    return float(sum(w.float().norm() for w in bs))


def check_saved(result, out, steps):
    assert result.steps == steps
    assert len(result.losses) == steps and all(math.isfinite(x) for x in result.losses)
    assert lora_b_norm(out) > 0
    note = json.loads((out / "criticlab_train.json").read_text())
    assert note["base"] == "embedded" and note["adapter"] is True
    model, tok = load_causal_lm(out)
    ids = tok("What is 2 + 2?", return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(**ids, min_new_tokens=3, max_new_tokens=3, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    assert gen.shape[1] == ids["input_ids"].shape[1] + 3
    return model, tok


def test_sft_steps_save_and_reload(base_model, rows_file, tmp_path):
    from criticlab.train.sft import CriticSFTConfig, train_sft

    out = tmp_path / "sft"
    result = train_sft(CriticSFTConfig(data=rows_file("sft"), out=out, max_steps=2,
                                       max_length=128))
    check_saved(result, out, 2)


def test_dpo_steps_save_and_reload(base_model, rows_file, tmp_path):
    from criticlab.train.dpo import CriticDPOConfig, train_dpo

    out = tmp_path / "dpo"
    result = train_dpo(CriticDPOConfig(data=rows_file("preference"), out=out, max_steps=2,
                                       max_length=128, learning_rate=1e-3))
    check_saved(result, out, 2)
    assert result.losses[0] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference


def test_grpo_calls_criticlab_rewards(base_model, tmp_path):
    from criticlab.models.scripted import ScriptedModel
    from criticlab.train.grpo import CriticGRPOConfig, train_grpo
    from criticlab.train.rewards import RefinementReward, refinement_rows
    from tests.train.conftest import EXAMPLES, write

    calls = []

    def shaped(completions, **kwargs):
        calls.append(("shaped", len(completions)))
        assert kwargs["gold_verdict"] and kwargs["gold_first_error"]
        return shaped_reward(completions, **kwargs)

    def brevity(completions, **kwargs):
        # A tiny model's critiques over 12 tokens almost always score 0 on every shaped
        # term, so a group would have no advantage and no gradient; this term makes sure the
        # optimizer moves the weights.
        return [-len(c[0]["content"]) / 100 for c in completions]

    class Refinement(RefinementReward):  # TRL awaits it on its own event loop
        async def __call__(self, completions, **kwargs):
            calls.append(("refinement", len(completions)))
            return await super().__call__(completions, **kwargs)

    actor = ScriptedModel(["Step 1: 3 * 4 = 12\nThe answer is 12."], cycle=True)
    out = tmp_path / "grpo"
    config = CriticGRPOConfig(data=write(tmp_path / "rl.jsonl", refinement_rows(EXAMPLES)),
                              out=out, max_steps=2, batch_size=1, num_generations=2,
                              max_completion_length=12, max_length=512, learning_rate=1e-3)
    result = train_grpo(config, reward_funcs=[shaped, brevity, Refinement(actor)])
    # One call of each per step, one reward per sampled critique.
    assert sorted(calls) == [("refinement", 2)] * 2 + [("shaped", 2)] * 2
    assert len(result.extra["reward"]) == 2
    check_saved(result, out, 2)


def test_prm_steps_save_reload_and_score(base_model, rows_file, tmp_path):
    from criticlab.train.prm import PRMConfig, step_scores, train_prm

    out = tmp_path / "prm"
    result = train_prm(PRMConfig(data=rows_file("stepwise"), out=out, max_steps=3,
                                 learning_rate=1e-3))
    model, tok = check_saved(result, out, 3)
    assert result.losses[-1] < result.losses[0]
    scores = step_scores(model, tok, "What is 2 + 2?", ["2 + 2 = 4", "So 4."])
    assert len(scores) == 2 and all(0 < s < 1 for s in scores)
    # prm:DIR reads the checkpoint in the format it was trained on (criticlab_train.json):
    # the same scores as the trainer's own scoring, not those of the generic PRM format
    import asyncio

    from criticlab.registry import make_model

    engine = make_model(f"prm:{out}")
    assert engine.name == f"prm:{out}" and engine.step_tag == "\n" and engine.prefix == "{question}\n"
    got = asyncio.run(engine.score_steps("What is 2 + 2?", ["2 + 2 = 4", "So 4."])).scores
    assert [round(s, 4) for s in got] == [round(s, 4) for s in scores]


def test_training_on_from_a_trained_adapter_saves_merged_weights(base_model, rows_file,
                                                                 tmp_path):
    from criticlab.train.prm import PRMConfig, train_prm

    first, second = tmp_path / "first", tmp_path / "second"
    train_prm(PRMConfig(data=rows_file("stepwise"), out=first, max_steps=1))
    result = train_prm(PRMConfig(data=rows_file("stepwise"), out=second, model=str(first),
                                 max_steps=1, learning_rate=1e-3))
    assert result.steps == 1 and math.isfinite(result.losses[0])
    assert (second / "model.safetensors").is_file()
    assert not (second / "adapter_config.json").exists()
    note = json.loads((second / "criticlab_train.json").read_text())
    assert note["adapter"] is False and note["base"] == str(first)
    model, _ = load_causal_lm(second)
    assert type(model).__name__ == "LlamaForCausalLM"
