import pytest

from criticlab.critics.arithmetic import ArithmeticCritic
from criticlab.critics.prompted import PromptedCritic
from criticlab.errors import ConfigError
from criticlab.infer.select import group_answers, majority_vote, select, step_aggregate
from criticlab.models.scripted import ScriptedModel
from criticlab.types import Critique, Problem, Solution, StepVerdict

P = Problem("p", "q", "14")


def sol(*steps, answer=None):
    return Solution(steps, answer)


RIGHT = sol("3 * 4 = 12", "12 + 2 = 14", answer="14")
SLIP = sol("3 * 4 = 12", "12 + 2 = 15", answer="15")        # arithmetic slip
WRONG = sol("3 * 4 = 12", "12 + 3 = 15", answer="15")       # consistent but wrong
OTHER = sol("3 + 4 = 7", "7 * 2 = 14", answer="14.0")


def test_group_merges_equal_answers():
    assert group_answers([RIGHT, SLIP, OTHER, sol("no answer")]) == [
        ("14", [0, 2]), ("15", [1]), (None, [3])]


def test_majority_ties_go_to_first_seen():
    s = majority_vote([SLIP, RIGHT, WRONG, OTHER])
    assert s.answer == "15" and s.votes == {"15": 2.0, "14": 2.0}


async def test_filtered_vote_uses_only_accepted_solutions():
    s = await select(P, [SLIP, SLIP, SLIP, RIGHT], "filtered", ArithmeticCritic())
    assert s.answer == "14" and not s.fallback and s.votes == {"14": 1.0}


async def test_filtered_vote_falls_back_when_the_critic_rejects_all():
    s = await select(P, [SLIP, SLIP, sol("1 + 1 = 3", answer="3")], "filtered",
                     ArithmeticCritic())
    assert s.fallback and s.answer == "15"


async def test_weighted_vote_sums_scores():
    # the arithmetic critic scores a slip 0 and a checked solution 1
    s = await select(P, [SLIP, SLIP, RIGHT], "weighted", ArithmeticCritic())
    assert s.answer == "14" and s.votes == {"15": 0.0, "14": 1.0}
    # a critic without scores ranks by how late the first error comes (0.9 * 1/2 each):
    # three late-error answers outweigh one accepted one
    def script(messages, config, i):
        return r"\boxed{-1}" if "12 + 2 = 14" in messages[0].content else r"\boxed{1}"
    s = await select(P, [SLIP, SLIP, SLIP, RIGHT], "weighted",
                     PromptedCritic(ScriptedModel(script)))
    assert s.answer == "15" and s.votes["15"] == pytest.approx(1.35) and s.votes["14"] == 1.0


async def test_best_of_n_by_critic_score():
    s = await select(P, [SLIP, RIGHT], "best", ArithmeticCritic())
    assert s.solution == RIGHT


def test_step_aggregations():
    c = Critique((StepVerdict(0, "correct", score=0.9), StepVerdict(1, "correct", score=0.5)))
    assert step_aggregate(c, "min") == 0.5 and step_aggregate(c, "last") == 0.5
    assert step_aggregate(c, "product") == pytest.approx(0.45)
    with pytest.raises(ConfigError):
        step_aggregate(c, "max")


async def test_sampled_critique_voting():
    # every sampled critique of the "15" solutions finds an error at step 1, of "14" none
    def script(messages, config, i):
        return r"\boxed{-1}" if "12 + 2 = 14" in messages[0].content else r"\boxed{1}"
    model = ScriptedModel(script)
    s = await select(P, [SLIP, WRONG, RIGHT], "sampled", PromptedCritic(model), k=3)
    assert s.answer == "14" and s.votes["14"] == 3.0
    assert [cfg.n for _, cfg in model.requests] == [3, 3, 3]


async def test_methods_need_a_critic_and_a_known_name():
    with pytest.raises(ConfigError, match="needs a critic"):
        await select(P, [RIGHT], "best")
    with pytest.raises(ConfigError, match="unknown selection method"):
        await select(P, [RIGHT], "oracle")
