import pytest

from criticlab.critics.arithmetic import ArithmeticCritic
from criticlab.critics.prompted import PromptedCritic
from criticlab.infer.refine import (
    BestRefiner,
    GlobalRefiner,
    LocalRefiner,
    Trajectory,
    refine_loop,
    solve,
)
from criticlab.infer.repair import RepairRefiner, repair_once
from criticlab.models.base import GenerateConfig
from criticlab.models.scripted import ScriptedModel
from criticlab.types import Critique, Problem, Solution, StepVerdict

P = Problem("p", "Ann buys 3 packs of 4 pens and 2 more pens. How many pens?", "14")
BAD = Solution(("3 * 4 = 12 pens in packs.", "12 + 2 = 15 pens.", "The answer is 15."), "15")


def test_solve_parses_steps_and_answer():
    import asyncio
    model = ScriptedModel(["Step 1: 3 * 4 = 12\nStep 2: 12 + 2 = 14\nThe answer is 14."])
    ((sol, usage),) = asyncio.run(solve(model, P, GenerateConfig()))
    assert sol.steps == ("3 * 4 = 12", "12 + 2 = 14\nThe answer is 14.") and sol.final_answer == "14"
    assert "Ann buys 3 packs" in model.requests[0][0][0].content and usage.calls == 1


async def test_local_refinement_keeps_the_correct_prefix_verbatim():
    actor = ScriptedModel(["Step 2: 12 + 2 = 14 pens.\nThe answer is 14."])
    crit = await ArithmeticCritic().critique(P, BAD)
    assert crit.first_error == 1
    new, _ = await LocalRefiner(actor).refine(P, BAD, crit)
    assert new.steps[0] == BAD.steps[0]  # verbatim, not re-generated
    assert new.steps[1:] == ("12 + 2 = 14 pens.\nThe answer is 14.",) and new.final_answer == "14"
    prompt = actor.requests[0][0][0].content
    assert "Step 1: 3 * 4 = 12 pens in packs." in prompt and "Step 2: 12 + 2 = 15 pens." in prompt
    assert '"12 + 2 = 15" is wrong: 12 + 2 = 14' in prompt and "Continue the solution from step 2" in prompt


async def test_global_refinement_sends_draft_and_feedback():
    actor = ScriptedModel(["Step 1: 3 * 4 + 2 = 14\nThe answer is 14."])
    crit = await ArithmeticCritic().critique(P, BAD)
    new, _ = await GlobalRefiner(actor).refine(P, BAD, crit)
    assert new.final_answer == "14"
    assert crit.feedback in actor.requests[0][0][0].content


async def test_loop_stops_when_the_critic_accepts_and_keeps_every_round():
    actor = ScriptedModel(["Step 2: 12 + 2 = 16 pens.", "Step 2: 12 + 2 = 14 pens.\nThe answer is 14."])
    t = await refine_loop(P, critic=ArithmeticCritic(), refiner=LocalRefiner(actor), rounds=5,
                          draft=BAD)
    assert [r.kind for r in t.rounds] == ["draft", "local", "local"]
    assert [r.critique.first_error for r in t.rounds] == [1, 1, None]
    assert t.final.final_answer == "14" and len(actor.requests) == 2
    assert Trajectory.from_dict(t.to_dict()) == t


async def test_loop_respects_the_round_limit():
    actor = ScriptedModel(["Step 2: 12 + 2 = 16."], cycle=True)
    t = await refine_loop(P, critic=ArithmeticCritic(), refiner=LocalRefiner(actor), rounds=2,
                          draft=BAD)
    assert len(t.rounds) == 3 and len(actor.requests) == 2


async def test_loop_writes_a_draft_with_the_actor():
    actor = ScriptedModel(["Step 1: 3 * 4 = 12\nStep 2: 12 + 2 = 14\nThe answer is 14."])
    t = await refine_loop(P, critic=ArithmeticCritic(), refiner=LocalRefiner(actor), rounds=3,
                          actor=actor)
    assert len(t.rounds) == 1 and t.rounds[0].usage.calls == 1


async def test_best_picks_the_higher_scored_refinement():
    # global writes a wrong solution, local a right one; the arithmetic critic ranks them
    def script(messages, config, i):
        text = messages[0].content
        return ("Step 1: 3 * 4 = 13\nThe answer is 15." if "Previous solution" in text
                else "Step 2: 12 + 2 = 14.\nThe answer is 14.")
    crit = await ArithmeticCritic().critique(P, BAD)
    new, usage = await BestRefiner(ScriptedModel(script), ArithmeticCritic()).refine(P, BAD, crit)
    assert new.final_answer == "14" and new.steps[0] == BAD.steps[0] and usage.calls == 2


async def test_best_keeps_the_draft_when_both_refinements_are_worse():
    crit = Critique((StepVerdict(0, "correct"), StepVerdict(1, "incorrect")), 1, "incorrect")
    actor = ScriptedModel(["Step 1: 1 + 1 = 3"], cycle=True)
    new, _ = await BestRefiner(actor, ArithmeticCritic()).refine(P, BAD, crit)
    assert new == BAD


async def test_repair_fixes_the_slip_and_everything_that_depends_on_it():
    sol = Solution(("Natalia sold 48/2 = <<48/2=24>>24 clips in May.",
                    "Natalia sold 48+24 = <<48+24=70>>70 clips altogether.",
                    "Half of that is 70/2 = <<70/2=35>>35."), "35")
    crit = await ArithmeticCritic().critique(P, sol)
    fixed, usage = await RepairRefiner().refine(P, sol, crit)
    assert fixed.steps == ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.",
                           "Natalia sold 48+24 = <<48+24=72>>72 clips altogether.",
                           "Half of that is 72/2 = <<72/2=36>>36.")
    assert fixed.final_answer == "36" and usage.calls == 0
    assert (await ArithmeticCritic().critique(P, fixed)).first_error is None


def test_repair_leaves_correct_text_alone_and_keeps_separators():
    assert repair_once(("2 + 2 = 4",)) is None
    out = repair_once(("1,000 + 250 = 1,200 dollars", "so 1,200 / 2 = 600"))
    assert out is not None and out[0] == ("1,000 + 250 = 1,250 dollars", "so 1,250 / 2 = 600")


@pytest.mark.slow
async def test_refine_end_to_end_on_the_embedded_model(embedded_model):
    cfg = GenerateConfig(max_tokens=64)
    critic = PromptedCritic(embedded_model, "stepwise", config=cfg)
    t = await refine_loop(P, critic=critic, refiner=GlobalRefiner(embedded_model, cfg), rounds=1,
                          draft=BAD)
    assert 1 <= len(t.rounds) <= 2 and t.rounds[0].solution == BAD
    assert all(r.critique is not None for r in t.rounds)
    assert t.usage.calls >= 1 and t.usage.completion_tokens > 0


def test_repair_does_not_guess_when_the_wrong_value_names_another_quantity():
    # the slip gives 8, but 8 is already the number of glasses: later 8s are left alone
    steps = ("He buys 16 / 2 = 8 cheap glasses.", "Each costs 60/100 * 5 = 8 dollars.",
             "So 8 * 8 = 64 dollars.")
    fixed, wrong, right = repair_once(steps)
    assert (wrong, right) == (8, 3)
    assert fixed == ("He buys 16 / 2 = 8 cheap glasses.", "Each costs 60/100 * 5 = 3 dollars.",
                     "So 8 * 8 = 64 dollars.")


def test_repair_rewrites_results_not_operands_in_the_slipped_step():
    fixed, _, _ = repair_once(("So 2+1=<<2+1=2>>2 bolts in all.",))
    assert fixed == ("So 2+1=<<2+1=3>>3 bolts in all.",)
