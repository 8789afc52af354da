"""A model-free refiner for arithmetic slips.

It takes the first wrong "expression = value" claim the arithmetic verifier finds, writes the
right value in its place, and carries the correction forward: later occurrences of the wrong
value (in later expressions, results and the final answer) become the right one, unless the
wrong value already named another quantity before the slip. It repeats while the verifier
finds a slip, so results that depended on the slip are recomputed in turn
(``154 + 50 = 204`` becomes ``144 + 50 = 204``, then ``144 + 50 = 194``).
It never touches a step before the first slip, and it gives up (returning what it has) when
a slip's stated value cannot be found in the text or the round budget runs out.
"""

from __future__ import annotations

import re
from fractions import Fraction

from criticlab.critics.arith_parse import evaluate
from criticlab.critics.arithmetic import check_claims
from criticlab.types import Critique, Problem, Solution, Usage

_NUMBER = re.compile(
    r"(?<![\w.,])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\w)|(?<![\w.,])-?\d+(?:\.\d+)?(?!\w)"
)


def _value(token: str) -> Fraction:
    return Fraction(token.replace(",", ""))


def _format_like(x: Fraction, like: str) -> str:
    """``x`` written the way ``like`` is: thousands separators and the same decimals."""
    decimals = len(like.split(".")[1]) if "." in like else 0
    if x.denominator != 1 and decimals == 0:
        decimals = 2
    text = f"{float(x):,.{decimals}f}" if "," in like else f"{float(x):.{decimals}f}"
    if x.denominator == 1 and decimals == 0:
        text = f"{x.numerator:,}" if "," in like else str(x.numerator)
    return text


def _replace_numbers(text: str, wrong: Fraction, right: Fraction) -> str:
    """Every number token in ``text`` equal to ``wrong`` becomes ``right``."""
    def sub(m: re.Match[str]) -> str:
        tok = m.group(0)
        return _format_like(right, tok) if _value(tok) == wrong else tok

    return _NUMBER.sub(sub, text)


# a result: the number right after "=" (or after ">>" that closes a GSM8K annotation)
_RESULT = re.compile(r"(?:=|>>)\s*\$?\s*(" + _NUMBER.pattern + ")")


def _replace_results(text: str, wrong: Fraction, right: Fraction) -> str:
    """The results (numbers right after "=" or ">>") equal to ``wrong`` become ``right``;
    the operands are left alone."""
    def sub(m: re.Match[str]) -> str:
        tok = m.group(1)
        if _value(tok) != wrong:
            return m.group(0)
        start = m.start(1) - m.start(0)
        return m.group(0)[:start] + _format_like(right, tok)

    return _RESULT.sub(sub, text)


def _ambiguous(value: Fraction, question: str, earlier: tuple[str, ...]) -> bool:
    """Whether ``value`` already names another quantity before the slip (in the question or
    an earlier step): then a later occurrence may not be the slipped result."""
    return any(_value(t) == value for text in (question, *earlier) for t in _NUMBER.findall(text))


def repair_once(
    steps: tuple[str, ...], question: str = ""
) -> tuple[tuple[str, ...], Fraction, Fraction] | None:
    """Fix the first arithmetic slip and carry it forward: the new steps, the wrong value and
    the right one; ``None`` when there is no slip this function can fix.

    In the slipped step only results are rewritten. Later steps get the right value wherever
    the wrong one occurs, unless the wrong value already named another quantity (in the
    question or an earlier step): then later steps are left as they are, since it cannot be
    told which occurrences are the slipped result."""
    for k, text in enumerate(steps):
        for check in check_claims(text):
            if check.ok is not False or check.value is None:
                continue
            try:
                stated = evaluate(check.claim.right.expr)
            except (ArithmeticError, ValueError):
                continue
            if not isinstance(stated, Fraction):
                continue
            fixed = _replace_results(text, stated, check.value)
            if fixed == text:
                continue
            later = steps[k + 1:]
            if not _ambiguous(stated, question, steps[:k]):
                later = tuple(_replace_numbers(s, stated, check.value) for s in later)
            return (*steps[:k], fixed, *later), stated, check.value
    return None


class RepairRefiner:
    """See the module docstring. ``max_fixes`` bounds the slips fixed per refinement."""

    name = "repair"

    def __init__(self, max_fixes: int = 20) -> None:
        self.max_fixes = max_fixes

    async def refine(
        self, problem: Problem, solution: Solution, critique: Critique
    ) -> tuple[Solution, Usage]:
        steps = solution.steps
        answer = solution.final_answer
        for _ in range(self.max_fixes):
            fixed = repair_once(steps, problem.question)
            if fixed is None:
                break
            steps, wrong, right = fixed
            if answer is not None:
                answer = _replace_numbers(answer, wrong, right)
        return Solution(steps, answer, solution.source), Usage()
