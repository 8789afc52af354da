import pytest

from criticlab.critics.ensemble import HybridCritic, VoteCritic, majority
from criticlab.critics.prompted import PromptedCritic
from criticlab.errors import ConfigError
from criticlab.models.scripted import ScriptedModel
from criticlab.types import Critique, Problem, Solution, StepVerdict, Usage

P = Problem("p", "q")
S = Solution(("a", "b", "c"))


def crit(first_error, parsed=True, verdict="auto", usage=Usage(1, 1, 1)):
    if verdict == "auto":
        verdict = None if not parsed else ("correct" if first_error is None else "incorrect")
    return Critique(first_error=first_error, verdict=verdict, parsed=parsed, usage=usage,
                    feedback=f"fe={first_error}")


def test_majority_drops_unparsed_and_counts():
    c = majority([crit(1), crit(None, parsed=False), crit(None), crit(1), crit(2)], "v")
    assert c.first_error == 1 and c.parsed and c.critic == "v"
    assert c.score == pytest.approx(1 / 4)  # one of four ballots says "no error"
    assert c.usage == Usage(5, 5, 5)
    assert "4 of 5 answered" in c.feedback


def test_majority_tie_goes_to_first_seen():
    assert majority([crit(2), crit(None), crit(None), crit(2)], "v").first_error == 2
    assert majority([crit(None), crit(2), crit(2), crit(None)], "v").first_error is None


def test_majority_all_unparsed():
    c = majority([crit(None, parsed=False), crit(None, parsed=False)], "v")
    assert not c.parsed and c.verdict is None


def test_abstaining_critic_does_not_vote():
    # a verifier that found nothing checkable (no error, no verdict) abstains
    assert majority([crit(None, verdict=None), crit(0)], "v").first_error == 0


async def test_vote_over_samples_of_a_prompted_critic():
    model = ScriptedModel([r"\boxed{1}", r"\boxed{-1}", "x", r"\boxed{1}"])
    c = await VoteCritic([PromptedCritic(model)], samples=4).critique(P, S)
    assert c.first_error == 1 and c.critic == "vote(processbench@4)"
    assert len(model.requests) == 1 and model.requests[0][1].n == 4


async def test_vote_over_several_critics():
    a = PromptedCritic(ScriptedModel([r"\boxed{0}"]))
    b = PromptedCritic(ScriptedModel(["Step 1: incorrect - no\nOverall: incorrect"]), "stepwise")
    c = PromptedCritic(ScriptedModel([r"\boxed{-1}"]))
    out = await VoteCritic([a, b, c]).critique(P, S)
    assert out.first_error == 0


def test_vote_needs_more_than_one_ballot():
    with pytest.raises(ConfigError):
        VoteCritic([PromptedCritic(ScriptedModel([]))], samples=1)


class Fixed:
    def __init__(self, name, critique):
        self.name = name
        self._c = critique

    async def critique(self, problem, solution):
        return self._c


def stepwise(*verdicts, parsed=True):
    steps = tuple(StepVerdict(i, v, f"{v}-{i}") for i, v in enumerate(verdicts))
    fe = next((i for i, v in enumerate(verdicts) if v == "incorrect"), None)
    return Critique(steps, fe, "incorrect" if fe is not None else "correct", parsed=parsed)


async def test_hybrid_earliest_error_wins_and_names_its_finder():
    ver = Fixed("arithmetic", stepwise("correct", "unknown", "incorrect"))
    lm = Fixed("stepwise", stepwise("correct", "incorrect", "correct"))
    c = await HybridCritic([ver], lm).critique(P, S)
    assert c.first_error == 1 and "found by stepwise" in c.feedback
    assert [s.verdict for s in c.steps] == ["correct", "incorrect", "incorrect"]
    assert c.steps[2].explanation == "[arithmetic] incorrect-2"
    assert c.steps[0].explanation == "[stepwise] correct-0"


async def test_hybrid_verifier_error_stands_when_lm_unparsed():
    ver = Fixed("arithmetic", stepwise("unknown", "incorrect", "unknown"))
    lm = Fixed("stepwise", Critique(raw="??", parsed=False))
    c = await HybridCritic([ver], lm).critique(P, S)
    assert c.parsed and c.first_error == 1 and "found by arithmetic" in c.feedback


async def test_hybrid_unparsed_when_nothing_found_and_lm_unreadable():
    ver = Fixed("arithmetic", Critique(tuple(StepVerdict(i, "unknown") for i in range(3))))
    lm = Fixed("stepwise", Critique(raw="??", parsed=False))
    c = await HybridCritic([ver], lm).critique(P, S)
    assert not c.parsed and c.verdict is None
