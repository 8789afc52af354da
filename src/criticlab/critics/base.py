"""The Critic protocol and helpers shared by every critic."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from criticlab.types import Critique, Overall, Problem, Solution, StepVerdict


@runtime_checkable
class Critic(Protocol):
    """Judges a solution. ``critique`` never raises for a model output it cannot read: it
    returns a ``Critique`` with ``parsed=False``. It may raise ``ModelError`` when the engine
    itself fails."""

    name: str

    async def critique(self, problem: Problem, solution: Solution) -> Critique: ...


def critique_sync(critic: Critic, problem: Problem, solution: Solution) -> Critique:
    """Run ``critic.critique`` from synchronous code (not from inside a running event loop)."""
    return asyncio.run(critic.critique(problem, solution))


def first_incorrect(steps: Sequence[StepVerdict]) -> int | None:
    """Index of the earliest step judged "incorrect", or ``None``."""
    wrong = [s.index for s in steps if s.verdict == "incorrect"]
    return min(wrong) if wrong else None


def overall_from_first_error(first_error: int | None) -> Overall:
    return "correct" if first_error is None else "incorrect"
