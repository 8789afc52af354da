import functools

import pytest

from criticlab.errors import ConfigError
from criticlab.label.export import rl_rows
from criticlab.models.scripted import ScriptedModel
from criticlab.train.rewards import (
    RefinementReward,
    count_steps,
    first_error_reward,
    format_reward,
    read_critique,
    refinement_rows,
    shaped_reward,
    verdict_reward,
)
from criticlab.types import Example, Gold, Problem, Solution

# Four steps, the first error at step 2 (0-based).
BAD = Example(Problem("a", "Tom has 3 bags of 4 apples and eats 2. How many are left?", "10"),
              Solution(("He has 3 bags.", "Each has 4 apples.", "3 * 4 = 13", "13 - 2 = 11")),
              Gold(2))
GOOD = Example(Problem("b", "What is 2 + 2?", "4"), Solution(("2 + 2 = 4", "The answer is 4.")),
               Gold(None, None, True))


def cols(ex, n, style="processbench"):
    """TRL's kwargs for n completions of one RL row."""
    row = rl_rows([ex], style)[0]
    return {"prompts": [row["prompt"]] * n,
            "gold_first_error": [row["gold_first_error"]] * n,
            "gold_verdict": [row["gold_verdict"]] * n}


def done(text):
    return [{"role": "assistant", "content": text}]


PB = [done("\\boxed{2}"), done("\\boxed{3}"), done("\\boxed{-1}"), done("no box"),
      done("\\boxed{9}"), done("\\boxed{x}"), done("\\boxed{0}")]


def test_step_counts_are_read_from_both_prompt_styles():
    pb = rl_rows([BAD], "processbench")[0]["prompt"][0]["content"]
    sw = rl_rows([BAD], "stepwise")[0]["prompt"][0]["content"]
    assert count_steps(pb, "processbench") == 4
    assert count_steps(sw, "stepwise") == 4  # not fooled by the template's example lines
    assert read_critique(done("\\boxed{3}"), [{"role": "user", "content": pb}]).first_error == 3


def test_format_reward_exact_and_partial():
    kw = cols(BAD, len(PB))
    assert format_reward(PB, **kw) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert format_reward(PB, partial=True, **kw) == [1.0, 1.0, 1.0, 0.0, 0.5, 0.5, 1.0]


def test_verdict_reward():
    assert verdict_reward(PB, **cols(BAD, len(PB))) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert verdict_reward(PB[:4], **cols(GOOD, 4)) == [0.0, 0.0, 1.0, 0.0]


def test_first_error_reward_exact_and_partial():
    kw = cols(BAD, len(PB))
    assert first_error_reward(PB, **kw) == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    near = functools.partial(first_error_reward, partial=True)
    # |3-2|/4 -> 0.75; |0-2|/4 -> 0.5; -1 vs a step and unreadable ones get nothing.
    assert near(PB, **kw) == [1.0, 0.75, 0.0, 0.0, 0.0, 0.0, 0.5]


def test_shaped_reward_gives_signal_to_half_formed_critiques():
    kw = cols(BAD, len(PB))
    got = shaped_reward(PB, **kw)
    assert got == pytest.approx([1.0, 0.2 + 0.4 + 0.3, 0.2, 0.0, 0.1, 0.1, 0.2 + 0.4 + 0.2])
    assert shaped_reward(PB[:2], weights=(1.0, 0.0, 0.0), partial=False,
                         **cols(BAD, 2)) == [1.0, 1.0]


def test_stepwise_completions_plain_strings():
    texts = ["Step 1: correct - ok\nStep 2: correct - ok\nStep 3: incorrect - 12\nOverall: incorrect",
             "Step 1: correct - ok\nStep 2: incorrect - no",
             "Overall: incorrect",
             "I think it is fine."]
    kw = cols(BAD, 4, "stepwise")
    kw["prompts"] = [p[0]["content"] for p in kw["prompts"]]  # standard (string) prompts
    assert format_reward(texts, **kw) == [1.0, 1.0, 0.0, 0.0]
    assert format_reward(texts, partial=True, **kw) == [1.0, 1.0, 0.5, 0.0]
    assert verdict_reward(texts, **kw) == [1.0, 1.0, 0.0, 0.0]
    assert first_error_reward(texts, partial=True, **kw) == [1.0, 0.75, 0.0, 0.0]


def test_missing_gold_columns_is_a_config_error():
    with pytest.raises(ConfigError, match="gold_first_error"):
        format_reward(PB[:1], prompts=[[{"role": "user", "content": "x"}]])


def test_refinement_reward_with_a_scripted_actor():
    rows = refinement_rows([BAD, GOOD])
    kw = {k: [rows[0][k], rows[0][k], rows[1][k], rows[1][k]] for k in rows[0]}
    kw["prompts"] = kw.pop("prompt")
    # The actor is asked once per rejecting critique of BAD (the two rejections), in order.
    actor = ScriptedModel(["Step 1: 3 * 4 = 12\nStep 2: 12 - 2 = 10\nThe answer is 10.",
                           "Step 1: 3 * 4 = 12\nStep 2: 12 - 1 = 11\nThe answer is 11."])
    reward = RefinementReward(actor, verdict_weight=0.5)
    got = reward.sync([done("\\boxed{2}"), done("\\boxed{1}"),
                       done("\\boxed{-1}"), done("nothing")], **kw)
    # fixed -> 1 + 0.5; refined but still wrong -> 0 + 0.5 (the verdict was right);
    # GOOD accepted unchanged, its answer is right -> 1 + 0.5; unreadable -> 0.
    assert got == [1.5, 0.5, 1.5, 0.0]


def test_refinement_reward_needs_its_columns():
    reward = RefinementReward(ScriptedModel([]))
    with pytest.raises(ConfigError, match="reference_answer"):
        reward.sync(PB[:1], **cols(BAD, 1))


def test_critique_reward_is_what_the_trl_functions_give():
    """criticlab serve scores critiques it already holds with critique_reward: the same
    numbers as the TRL reward functions give the same completions."""
    from criticlab.train.rewards import GOLD_REWARDS, critique_reward

    kw = cols(BAD, len(PB))
    crits = [read_critique(c, kw["prompts"][0]) for c in PB]
    trl = {"shaped": shaped_reward(PB, **kw), "format": format_reward(PB, **kw),
           "verdict": verdict_reward(PB, **kw), "first_error": first_error_reward(PB, **kw),
           "first_error_partial": first_error_reward(PB, partial=True, **kw)}
    assert set(trl) == set(GOLD_REWARDS)
    for name, want in trl.items():
        assert [critique_reward(name, c, 2) for c in crits] == pytest.approx(want), name
    with pytest.raises(ConfigError, match="unknown reward 'bogus'"):
        critique_reward("bogus", crits[0], 2)
