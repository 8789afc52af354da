"""Final answers: extract one from a solution, compare it with a reference (math-verify), and
a critic that does so. Comparing with a reference is an oracle: the critic must be asked for
explicitly (``AnswerCritic(oracle=True)``), so a benchmark cannot leak the answer by default.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from criticlab.critics.parsing import last_boxed
from criticlab.errors import ConfigError
from criticlab.types import Critique, Problem, Solution, StepVerdict

log = logging.getLogger(__name__)

_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*\$?\s*([^\n]+?)\s*(?:\.\s*$|$)",
    re.IGNORECASE | re.MULTILINE,
)
_HASHES = re.compile(r"####\s*([^\n]+)")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


def extract_answer(text: str) -> str | None:
    """The final answer written in ``text``: the last ``\\boxed{}``, else a GSM8K ``#### x``
    line, else the last "the answer is x", else the last number. ``None`` if there is none."""
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    hashes = _HASHES.findall(text)
    if hashes:
        return str(hashes[-1]).strip()
    said = _ANSWER_IS.findall(text)
    if said:
        return str(said[-1]).strip().rstrip(".")
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace("$", "").rstrip(".") if numbers else None


def solution_answer(solution: Solution) -> str | None:
    """The solution's own ``final_answer`` or the one written in its steps."""
    if solution.final_answer:
        return solution.final_answer
    return extract_answer("\n".join(solution.steps))


def _plain_number(s: str) -> float | None:
    t = s.strip().replace(",", "").replace("$", "").rstrip(".").strip()
    t = t.removesuffix("%")
    try:
        return float(t)
    except ValueError:
        return None


def same_answer(answer: str | None, reference: str | None) -> bool:
    """Whether two final answers are mathematically equal (math-verify; plain numbers also
    compared directly, so "1,000" equals "1000.00"). ``None`` never equals anything."""
    if answer is None or reference is None:
        return False
    a, b = _plain_number(answer), _plain_number(reference)
    if a is not None and b is not None:
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    try:
        from math_verify import parse, verify
    except ImportError:
        return answer.strip() == reference.strip()
    try:
        gold = parse(f"${reference}$") or parse(reference)
        pred = parse(f"${answer}$") or parse(answer)
        return bool(verify(gold, pred))
    except Exception as e:  # math-verify can raise on odd LaTeX; that is "not the same"
        log.debug("math-verify failed on %r vs %r: %s", answer, reference, e)
        return False


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
