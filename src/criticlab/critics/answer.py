"""The oracle critic that compares a solution's final answer with the reference answer.

Extracting and comparing answers is grading, not critique: it lives in
:mod:`criticlab.grading`. Comparing with a reference is an
oracle: the critic must be asked for explicitly (``AnswerCritic(oracle=True)``), so a benchmark
cannot leak the answer by default.
"""

from __future__ import annotations

from collections.abc import Sequence

from criticlab.errors import ConfigError
from criticlab.grading import same_answer, solution_answer
from criticlab.types import Critique, Problem, Solution, StepVerdict


class AnswerCritic:
    """Compares the solution's final answer with ``problem.reference_answer``. It judges the
    whole solution, not its steps: no first error, only an overall verdict (and score 1/0).
    Uses the reference answer, so it is an oracle and must be enabled with ``oracle=True``."""

    name = "answer"

    def __init__(self, *, oracle: bool = False) -> None:
        if not oracle:
            raise ConfigError(
                "the answer critic reads the reference answer (an oracle); enable it explicitly"
            )

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        if problem.reference_answer is None:
            return Critique(feedback=f"{problem.id} has no reference answer", parsed=True,
                            critic=self.name, steps=_unknown(solution.steps))
        got = solution_answer(solution)
        ok = same_answer(got, problem.reference_answer)
        feedback = (f"final answer {got!r} matches the reference" if ok else
                    f"final answer {got!r} differs from the reference")
        return Critique(_unknown(solution.steps), None, "correct" if ok else "incorrect",
                        feedback, score=float(ok), critic=self.name)


def _unknown(steps: Sequence[str]) -> tuple[StepVerdict, ...]:
    return tuple(StepVerdict(i, "unknown") for i in range(len(steps)))
