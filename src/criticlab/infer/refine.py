"""Solve -> critique -> refine, until the critic accepts or a round limit (Self-Refine,
critique-in-the-loop), with GLoRe's global and local refinement and a reranker among them.

Every round is kept: the solution, its critique and the tokens spent on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from criticlab.critics.base import Critic
from criticlab.critics.prompted import fill, load_template
from criticlab.errors import ConfigError
from criticlab.grading import extract_answer
from criticlab.models.base import GenerateConfig, LanguageModel, Message
from criticlab.steps import render_numbered, split_steps
from criticlab.types import Critique, Problem, Solution, Usage

ANSWER_LINE = "the answer is"


@dataclass(frozen=True)
class Round:
    """One solution in a trajectory: how it was made, its critique, and what both cost."""

    kind: str
    solution: Solution
    critique: Critique | None
    usage: Usage = field(default_factory=Usage)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "solution": self.solution.to_dict(),
                "critique": None if self.critique is None else self.critique.to_dict(),
                "usage": self.usage.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Round:
        c = d.get("critique")
        return cls(str(d["kind"]), Solution.from_dict(d["solution"]),
                   None if c is None else Critique.from_dict(c), Usage.from_dict(d["usage"]))


@dataclass(frozen=True)
class Trajectory:
    problem: Problem
    rounds: tuple[Round, ...]

    @property
    def final(self) -> Solution:
        return self.rounds[-1].solution

    @property
    def usage(self) -> Usage:
        return sum((r.usage for r in self.rounds), Usage())

    def to_dict(self) -> dict[str, Any]:
        return {"problem": self.problem.to_dict(), "rounds": [r.to_dict() for r in self.rounds]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trajectory:
        return cls(Problem.from_dict(d["problem"]),
                   tuple(Round.from_dict(r) for r in d["rounds"]))


def accepts(c: Critique) -> bool:
    """The critic names no error (an unparsed critique names none either: there is nothing to
    act on, so the loop stops rather than refine blindly)."""
    return c.first_error is None and c.verdict != "incorrect"


def critique_score(c: Critique, n_steps: int) -> float:
    """A number to rank solutions by: the critic's score when it gives one, else 1 for an
    accepted solution and, for a rejected one, how far into it the first error comes."""
    if c.score is not None:
        return c.score
    if accepts(c):
        return 1.0 if c.parsed else 0.5
    if c.first_error is None or n_steps == 0:
        return 0.0
    return 0.9 * c.first_error / n_steps


def to_solution(text: str, prefix: Sequence[str] = ()) -> Solution:
    """Model text -> a Solution: the steps after ``prefix``, and the final answer."""
    steps = tuple(prefix) + split_steps(text)
    return Solution(steps, extract_answer(text) or extract_answer("\n".join(steps)))


async def solve(
    actor: LanguageModel, problem: Problem, config: GenerateConfig
) -> list[tuple[Solution, Usage]]:
    """``config.n`` solutions of ``problem`` written by ``actor``."""
    prompt = fill(load_template("solve.txt", ("{problem}",)), problem=problem.question)
    gens = await actor.generate([Message("user", prompt)], config)
    return [(to_solution(g.text), g.usage) for g in gens]


class Refiner(Protocol):
    name: str

    async def refine(
        self, problem: Problem, solution: Solution, critique: Critique
    ) -> tuple[Solution, Usage]: ...


class GlobalRefiner:
    """Rewrite the whole solution from the question, the draft and the critique."""

    name = "global"

    def __init__(self, actor: LanguageModel, config: GenerateConfig | None = None) -> None:
        self.actor = actor
        self.config = config or GenerateConfig(max_tokens=1024)
        self.template = load_template("refine_global.txt", ("{problem}", "{steps}", "{feedback}"))

    async def refine(
        self, problem: Problem, solution: Solution, critique: Critique
    ) -> tuple[Solution, Usage]:
        prompt = fill(self.template, problem=problem.question,
                      steps=render_numbered(solution.steps),
                      feedback=critique.feedback or "The solution contains an error.")
        (g,) = await self.actor.generate([Message("user", prompt)], replace(self.config, n=1))
        return to_solution(g.text), g.usage


class LocalRefiner:
    """Keep the steps before the critic's first error verbatim and rewrite from it. Without
    a first error (a whole-solution verdict) it rewrites from the first step."""

    name = "local"

    def __init__(self, actor: LanguageModel, config: GenerateConfig | None = None) -> None:
        self.actor = actor
        self.config = config or GenerateConfig(max_tokens=1024)
        self.template = load_template(
            "refine_local.txt", ("{problem}", "{steps}", "{wrong_step}", "{feedback}", "{next}"))

    async def refine(
        self, problem: Problem, solution: Solution, critique: Critique
    ) -> tuple[Solution, Usage]:
        k = critique.first_error or 0
        prefix = solution.steps[:k]
        why = next((s.explanation for s in critique.steps if s.index == k), "") or (
            critique.feedback or "It contains an error.")
        prompt = fill(self.template, problem=problem.question,
                      steps=render_numbered(prefix) or "(none yet)",
                      wrong_step=f"Step {k + 1}: {solution.steps[k]}" if k < len(
                          solution.steps) else "(missing)",
                      feedback=why, next=str(k + 1))
        (g,) = await self.actor.generate([Message("user", prompt)], replace(self.config, n=1))
        return to_solution(g.text, prefix), g.usage


class BestRefiner:
    """GLoRe's reranker: produce the global and the local refinement, critique both, and keep
    the best of draft / global / local by the critic's score (ties keep the earlier one)."""

    name = "best"

    def __init__(self, actor: LanguageModel, critic: Critic,
                 config: GenerateConfig | None = None) -> None:
        self.refiners = (GlobalRefiner(actor, config), LocalRefiner(actor, config))
        self.critic = critic

    async def refine(
        self, problem: Problem, solution: Solution, critique: Critique
    ) -> tuple[Solution, Usage]:
        outs = await asyncio.gather(*(r.refine(problem, solution, critique)
                                      for r in self.refiners))
        crits = await asyncio.gather(*(self.critic.critique(problem, s) for s, _ in outs))
        usage = sum((u for _, u in outs), Usage()) + sum((c.usage for c in crits), Usage())
        options = [(critique_score(critique, len(solution.steps)), solution)] + [
            (critique_score(c, len(s.steps)), s) for (s, _), c in zip(outs, crits, strict=True)]
        best = max(range(len(options)), key=lambda i: (options[i][0], -i))
        return options[best][1], usage


async def get_draft(problem: Problem, draft: Solution | None, actor: LanguageModel | None,
                    solve_config: GenerateConfig | None) -> tuple[Solution, Usage]:
    """``draft`` when given (at no cost), else one written by ``actor``."""
    if draft is not None:
        return draft, Usage()
    if actor is None:
        raise ConfigError(f"{problem.id}: no solution given and no actor to write one")
    ((written, usage),) = await solve(actor, problem, solve_config or GenerateConfig(
        max_tokens=1024))
    return written, usage


async def refine_loop(
    problem: Problem,
    *,
    critic: Critic,
    refiner: Refiner,
    rounds: int,
    draft: Solution | None = None,
    actor: LanguageModel | None = None,
    solve_config: GenerateConfig | None = None,
) -> Trajectory:
    """Critique the draft (``actor`` writes one when none is given) and refine it until the
    critic accepts or ``rounds`` refinements were made. The last round's solution is the
    answer; every round is kept."""
    if rounds < 0:
        raise ConfigError("rounds must be at least 0")
    draft, usage = await get_draft(problem, draft, actor, solve_config)
    crit = await critic.critique(problem, draft)
    history = [Round("draft", draft, crit, usage + crit.usage)]
    for _ in range(rounds):
        last = history[-1]
        assert last.critique is not None
        if accepts(last.critique):
            break
        solution, used = await refiner.refine(problem, last.solution, last.critique)
        crit = await critic.critique(problem, solution)
        history.append(Round(refiner.name, solution, crit, used + crit.usage))
    return Trajectory(problem, tuple(history))
