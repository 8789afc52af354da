import math

import pytest

from criticlab.critics.prompted import PromptedCritic
from criticlab.errors import ConfigError
from criticlab.infer.refine import GlobalRefiner
from criticlab.infer.search import Node, search, search_loop, uct
from criticlab.models.base import GenerateConfig
from criticlab.types import Critique, Problem, Solution, Usage

P = Problem("p", "q", "14")


class ScoreByAnswer:
    """A critic that scores a solution by its last step's number (known values), one call."""

    name = "score"

    async def critique(self, problem, solution):
        score = {"a": 0.2, "b": 0.9, "c": 0.5}.get(solution.steps[-1], 0.1)
        return Critique(first_error=None if score > 0.8 else 0, verdict=None, score=score,
                        usage=Usage(calls=1))


class Cycle:
    """A refiner that writes the next solution of a fixed list, one call each."""

    name = "cycle"

    def __init__(self, texts):
        self.texts = list(texts)
        self.i = 0

    async def refine(self, problem, solution, critique):
        text = self.texts[self.i % len(self.texts)]
        self.i += 1
        return Solution((text,)), Usage(calls=1)


@pytest.mark.parametrize("budget", [1, 2, 5, 9, 10])
async def test_search_respects_its_budget(budget):
    r = await search(P, Solution(("a",)), critic=ScoreByAnswer(), refiner=Cycle("acb"),
                     budget=budget)
    assert r.usage.calls <= max(budget, 1)
    # root critique (1 call) + 2 calls per expansion
    assert r.nodes == 1 + max(0, (budget - 1) // 2)


async def test_search_returns_the_best_node():
    r = await search(P, Solution(("a",)), critic=ScoreByAnswer(), refiner=Cycle("acb"),
                     budget=9)
    assert r.best.steps == ("b",) and r.best_critique.score == 0.9


def test_q_and_uct():
    root = Node(Solution(("a",)), Critique(), rewards=[0.2, 0.9, 0.5])
    assert root.q == pytest.approx((0.2 + 1.6 / 3) / 2)
    child = Node(Solution(("b",)), Critique(), parent=root, rewards=[0.9])
    assert uct(child, 0.0) == pytest.approx(0.9)
    assert uct(child, 1.0) > uct(child, 0.0)


def test_backup_follows_mctsr():
    # Q'(a) = (Q(a) + max over children Q'(c)) / 2, from the new leaf up; N grows on the path
    root = Node(Solution(("r",)), Critique(), rewards=[0.4])
    mid = Node(Solution(("m",)), Critique(), parent=root, rewards=[0.6])
    root.children.append(mid)
    mid.backup()
    assert root.q == pytest.approx((0.4 + 0.6) / 2) and root.visits == 2
    leaf = Node(Solution(("l",)), Critique(), parent=mid, rewards=[1.0, 0.5])
    mid.children.append(leaf)
    leaf.backup()
    assert leaf.q == pytest.approx((0.5 + 0.75) / 2)  # its own (min + mean) / 2
    assert mid.q == pytest.approx((0.6 + 0.625) / 2) and mid.visits == 2
    assert root.q == pytest.approx((0.4 + 0.6125) / 2) and root.visits == 3
    assert uct(mid, 1.0) == pytest.approx(0.6125 + math.sqrt(math.log(4) / (2 + 1e-6)))


async def test_uniform_policy_explores_differently_and_is_seeded():
    async def run(policy, seed):
        r = await search(P, Solution(("a",)), critic=ScoreByAnswer(),
                         refiner=Cycle("cbacab"), budget=21, policy=policy, seed=seed,
                         max_children=2)
        return r.nodes, r.best.steps
    assert await run("uniform", 3) == await run("uniform", 3)
    with pytest.raises(ConfigError):
        await run("softmax", 0)


@pytest.mark.slow
async def test_search_on_the_embedded_model(embedded_model):
    cfg = GenerateConfig(max_tokens=32)
    r = await search(P, Solution(("3 * 4 = 12", "12 + 2 = 15")),
                     critic=PromptedCritic(embedded_model, "stepwise", config=cfg),
                     refiner=GlobalRefiner(embedded_model, cfg), budget=5)
    assert r.usage.calls <= 5 and r.nodes >= 2


async def test_search_loop_keeps_the_draft_and_the_best_with_the_costs_split():
    t = await search_loop(P, critic=ScoreByAnswer(), refiner=Cycle(["c", "b", "a"]), budget=7,
                          draft=Solution(("a",)))
    assert [r.kind for r in t.rounds] == ["draft", "mctsr"]
    # root a has children c (0.5) and b (0.9); UCT expands b into a (0.2), so
    # Q'(b) = (0.9 + 0.2) / 2 = 0.55 still beats c's 0.5 and the root's (0.2 + 0.55) / 2
    assert [r.solution.steps for r in t.rounds] == [("a",), ("b",)]
    assert t.rounds[0].usage == Usage(calls=1)  # the draft's critique
    # three expansions (refine + critique each) fit in 7 calls after the root's critique
    assert t.rounds[1].usage == Usage(calls=6) and t.usage == Usage(calls=7)


async def test_search_loop_returns_the_draft_alone_when_nothing_beats_it():
    # refinements that change nothing tie with the draft, which then wins
    t = await search_loop(P, critic=ScoreByAnswer(), refiner=Cycle(["b"]), budget=5,
                          draft=Solution(("b",)), policy="uniform")
    assert [r.kind for r in t.rounds] == ["draft"] and t.final.steps == ("b",)
    with pytest.raises(ConfigError, match="no solution given and no actor"):
        await search_loop(P, critic=ScoreByAnswer(), refiner=Cycle(["a"]), budget=3)
