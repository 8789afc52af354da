"""Choose one answer among N sampled solutions: majority vote, best-of-N by critic score,
critic-filtered majority vote (RefCritic), score-weighted vote, and sampled-critique voting.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from criticlab.critics.base import Critic
from criticlab.critics.ensemble import SamplingCritic
from criticlab.errors import ConfigError
from criticlab.grading import same_answer, solution_answer
from criticlab.infer.refine import accepts, critique_score
from criticlab.types import Critique, Problem, Solution

METHODS = ("majority", "best", "filtered", "weighted", "sampled")
AGGREGATIONS = ("min", "last", "product")


@dataclass(frozen=True)
class Selection:
    """The chosen answer and solution, and why: ``votes`` per distinct answer (counts or
    summed scores), and whether the method fell back to the plain majority."""

    answer: str | None
    solution: Solution | None
    votes: dict[str, float]
    method: str
    fallback: bool = False


def group_answers(solutions: Sequence[Solution]) -> list[tuple[str | None, list[int]]]:
    """Distinct final answers (mathematically equal ones merged, first spelling kept) with the
    indices of the solutions that reached them, in order of first appearance."""
    groups: list[tuple[str | None, list[int]]] = []
    for i, s in enumerate(solutions):
        a = solution_answer(s)
        for key, members in groups:
            if key is not None and a is not None and same_answer(a, key):
                members.append(i)
                break
        else:
            groups.append((a, [i]))
    return groups


def majority_vote(solutions: Sequence[Solution], keep: Sequence[int] | None = None) -> Selection:
    """The most common final answer among ``keep`` (all by default); ties go to the answer
    seen first; solutions without an answer do not vote."""
    allowed = set(range(len(solutions)) if keep is None else keep)
    groups = [(a, [i for i in m if i in allowed]) for a, m in group_answers(solutions)]
    groups = [(a, m) for a, m in groups if a is not None and m]
    if not groups:
        return Selection(None, None, {}, "majority")
    best = max(range(len(groups)), key=lambda g: (len(groups[g][1]), -g))
    answer, members = groups[best]
    votes = {str(a): float(len(m)) for a, m in groups}
    return Selection(answer, solutions[members[0]], votes, "majority")


def step_aggregate(c: Critique, how: str) -> float:
    """A PRM-style solution score from per-step scores: ``min``, ``last`` or ``product``;
    critics without step scores fall back to :func:`critique_score`."""
    scores = [s.score for s in c.steps if s.score is not None]
    if not scores:
        return critique_score(c, len(c.steps))
    if how == "min":
        return min(scores)
    if how == "last":
        return scores[-1]
    if how == "product":
        return math.prod(scores)
    raise ConfigError(f"unknown aggregation {how!r}; choose from {AGGREGATIONS}")


async def select(
    problem: Problem,
    solutions: Sequence[Solution],
    method: str,
    critic: Critic | None = None,
    *,
    aggregate: str = "min",
    k: int = 4,
) -> Selection:
    """Pick one of ``solutions`` by ``method`` (see the module docstring). Every method but
    ``majority`` needs a critic; ``sampled`` draws ``k`` critiques per solution and sums their
    scores per answer."""
    if method not in METHODS:
        raise ConfigError(f"unknown selection method {method!r}; choose from {METHODS}")
    if method == "majority":
        return majority_vote(solutions)
    if critic is None:
        raise ConfigError(f"selection by {method!r} needs a critic")
    if method == "sampled":
        if not isinstance(critic, SamplingCritic):
            raise ConfigError(f"critic {critic.name!r} cannot sample critiques")
        many = await asyncio.gather(*(critic.sample(problem, s, k) for s in solutions))
        scores = [sum(critique_score(c, len(s.steps)) for c in cs)
                  for s, cs in zip(solutions, many, strict=True)]
        return _weighted(solutions, scores, "sampled")
    crits = await asyncio.gather(*(critic.critique(problem, s) for s in solutions))
    if method == "best":
        scores = [step_aggregate(c, aggregate) for c in crits]
        best = max(range(len(solutions)), key=lambda i: (scores[i], -i))
        votes = {str(solution_answer(s)): sc for s, sc in zip(solutions, scores, strict=True)}
        return Selection(solution_answer(solutions[best]), solutions[best], votes, "best")
    if method == "filtered":
        kept = [i for i, c in enumerate(crits) if accepts(c) and c.parsed]
        if not kept:
            return _fallback(majority_vote(solutions), "filtered")
        chosen = majority_vote(solutions, kept)
        return Selection(chosen.answer, chosen.solution, chosen.votes, "filtered")
    scores = [critique_score(c, len(s.steps)) for s, c in zip(solutions, crits, strict=True)]
    return _weighted(solutions, scores, "weighted")


def _weighted(solutions: Sequence[Solution], scores: Sequence[float], method: str) -> Selection:
    groups = [(a, m) for a, m in group_answers(solutions) if a is not None]
    if not groups:
        return Selection(None, None, {}, method)
    totals = [sum(scores[i] for i in m) for _, m in groups]
    best = max(range(len(groups)), key=lambda g: (totals[g], -g))
    answer, members = groups[best]
    top = max(members, key=lambda i: scores[i])
    return Selection(answer, solutions[top], {a: t for (a, _), t in zip(groups, totals,
                                                                        strict=True)}, method)


def _fallback(s: Selection, method: str) -> Selection:
    return Selection(s.answer, s.solution, s.votes, method, fallback=True)
