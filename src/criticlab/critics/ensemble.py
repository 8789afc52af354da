"""Critics made of critics: majority voting and verifier-first hybrids."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

from criticlab.critics.base import Critic
from criticlab.errors import ConfigError
from criticlab.types import Critique, Overall, Problem, Solution, StepVerdict, Usage


@runtime_checkable
class SamplingCritic(Critic, Protocol):
    async def sample(self, problem: Problem, solution: Solution, n: int) -> list[Critique]: ...


def _vote_key(c: Critique) -> int | None:
    """A critique's ballot in ProcessBench's format (-1 = no error), or ``None`` when it
    abstains: unparsed, or a critic that could not judge (no error found, no verdict)."""
    if not c.parsed:
        return None
    if c.first_error is not None:
        return c.first_error
    return -1 if c.verdict == "correct" else None


def majority(critiques: Sequence[Critique], name: str) -> Critique:
    """ProcessBench's maj@n rule: drop ballots without an answer, the most common first-error
    index wins (ties go to the value seen first). The winner is the first critique that cast
    the winning ballot, so its explanations are kept. ``score`` is the share of ballots that
    found no error; ``usage`` is the sum over all critiques."""
    usage = sum((c.usage for c in critiques), Usage())
    ballots = [(k, c) for c in critiques if (k := _vote_key(c)) is not None]
    if not ballots:
        raws = "\n---\n".join(c.raw for c in critiques if c.raw)
        return Critique(
            raw=raws, parsed=False, critic=name, usage=usage,
            feedback=f"unparsed: none of {len(critiques)} critiques gave an answer",
        )
    counts = Counter(k for k, _ in ballots)
    winner = counts.most_common(1)[0][0]
    chosen = next(c for k, c in ballots if k == winner)
    tally = ", ".join(f"{'no error' if k == -1 else f'step {k + 1}'}: {v}" for k, v in
                      counts.most_common())
    feedback = f"{chosen.feedback}\n(votes {tally}; {len(ballots)} of {len(critiques)} answered)"
    return replace(
        chosen,
        critic=name,
        usage=usage,
        score=counts.get(-1, 0) / len(ballots),
        feedback=feedback.strip(),
    )


class VoteCritic:
    """Majority vote (ProcessBench maj@n) over ``samples`` sampled critiques of one critic,
    or over several critics (each sampled ``samples`` times when it can sample)."""

    def __init__(self, critics: Sequence[Critic], samples: int = 1) -> None:
        if not critics:
            raise ConfigError("a vote needs at least one critic")
        if samples < 1:
            raise ConfigError("--samples must be at least 1")
        if len(critics) == 1 and samples == 1:
            raise ConfigError("a vote over one critic needs --samples of 2 or more")
        for c in critics:
            if samples > 1 and not isinstance(c, SamplingCritic):
                raise ConfigError(f"critic {c.name!r} cannot sample; use --samples 1")
        self.critics = tuple(critics)
        self.samples = samples
        inner = "+".join(c.name for c in critics)
        self.name = f"vote({inner}@{samples})" if samples > 1 else f"vote({inner})"

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        async def one(c: Critic) -> list[Critique]:
            if self.samples > 1 and isinstance(c, SamplingCritic):
                return await c.sample(problem, solution, self.samples)
            return [await c.critique(problem, solution)]

        groups = await asyncio.gather(*(one(c) for c in self.critics))
        return majority([c for g in groups for c in g], self.name)


class HybridCritic:
    """Verifiers first, an LM critic for the rest: every component judges the whole solution,
    the earliest error wins, and each step's explanation says which component judged it.

    A verifier's "incorrect" overrides the LM's verdict on that step; elsewhere the LM's verdict
    stands and a verifier's "correct" fills steps the LM left unknown. The result is unparsed
    only when the LM's output is unparsed and no verifier found an error.
    """

    def __init__(self, verifiers: Sequence[Critic], lm: Critic | None) -> None:
        if not verifiers and lm is None:
            raise ConfigError("a hybrid critic needs a verifier or an LM critic")
        self.verifiers = tuple(verifiers)
        self.lm = lm
        parts = [v.name for v in self.verifiers] + ([lm.name] if lm is not None else [])
        self.name = f"hybrid({'+'.join(parts)})"

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        components: list[Critic] = [*self.verifiers, *([self.lm] if self.lm else [])]
        crits = await asyncio.gather(*(c.critique(problem, solution) for c in components))
        ver = list(zip(self.verifiers, crits[: len(self.verifiers)], strict=True))
        lm_crit = crits[-1] if self.lm is not None else None
        usage = sum((c.usage for c in crits), Usage())

        steps: list[StepVerdict] = []
        for i in range(len(solution.steps)):
            steps.append(self._step(i, ver, lm_crit))
        found_by: dict[int, tuple[str, Critique]] = {}
        named = [(v.name, c) for v, c in ver]
        if self.lm is not None and lm_crit is not None:
            named.append((self.lm.name, lm_crit))
        for name, c in named:
            if c.parsed and c.first_error is not None:
                found_by.setdefault(c.first_error, (name, c))
        first_error = min(found_by) if found_by else None
        lm_ok = lm_crit is None or lm_crit.parsed
        raw = "\n---\n".join(f"[{comp.name}]\n{c.raw}" for comp, c in zip(components, crits,
                                                                         strict=True) if c.raw)
        if first_error is None and not lm_ok:
            return Critique(tuple(steps), None, None, "unparsed: the LM critic's output could "
                            "not be read and no verifier found an error", raw=raw,
                            parsed=False, critic=self.name, usage=usage)
        verdict: Overall | None
        if first_error is not None:
            verdict = "incorrect"
            finder, fc = found_by[first_error]
            why = _step_of(fc, first_error)
            feedback = (f"Step {first_error + 1} is the first error, found by {finder}: "
                        f"{why.explanation if why else fc.feedback}").rstrip(": ")
            if lm_crit is not None and not lm_crit.parsed and self.lm is not None:
                feedback += (f"\n({self.lm.name}'s output could not be read: "
                             f"{lm_crit.feedback})")
        else:
            decided = [c.verdict for c in crits if c.parsed and c.verdict is not None]
            verdict = "correct" if decided else None
            feedback = "no error found" if decided else "no component could judge the solution"
        return Critique(tuple(steps), first_error, verdict, feedback, raw=raw, critic=self.name,
                        usage=usage)

    def _step(
        self, i: int, ver: list[tuple[Critic, Critique]], lm_crit: Critique | None
    ) -> StepVerdict:
        for v, c in ver:
            s = _step_of(c, i)
            if s is not None and s.verdict == "incorrect":
                return replace(s, explanation=f"[{v.name}] {s.explanation}".strip())
        if lm_crit is not None and self.lm is not None:
            s = _step_of(lm_crit, i)
            if s is not None and s.verdict != "unknown":
                return replace(s, explanation=f"[{self.lm.name}] {s.explanation}".strip())
        for v, c in ver:
            s = _step_of(c, i)
            if s is not None and s.verdict == "correct":
                return replace(s, explanation=f"[{v.name}] {s.explanation}".strip())
        return StepVerdict(i, "unknown")


def _step_of(c: Critique, i: int) -> StepVerdict | None:
    if not c.parsed:
        return None
    return next((s for s in c.steps if s.index == i), None)
