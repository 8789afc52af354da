"""Final answers: extract one from a solution and decide whether two are mathematically equal.

Used wherever a run is scored against a reference answer: refine and select accuracy
(:mod:`criticlab.infer`), Monte Carlo step labels (:mod:`criticlab.label.mc`), the loop
reports (:mod:`criticlab.report`) and GRPO rewards (:mod:`criticlab.train.rewards`); the oracle
:class:`~criticlab.critics.answer.AnswerCritic` wraps it as a critic.

Equivalence is decided by math-verify (a core dependency): ``\\frac{1}{2}`` equals ``0.5``.
Without it, :func:`same_answer` raises :class:`~criticlab.errors.ConfigError`; it never falls
back to comparing strings, so a score does not depend on what happens to be installed.
"""

from __future__ import annotations

import logging
import re
import threading
from decimal import Decimal
from typing import Any

from criticlab.critics.parsing import last_boxed
from criticlab.errors import ConfigError
from criticlab.types import Solution

log = logging.getLogger(__name__)

MATH_VERIFY_HINT = "pip install 'math-verify>=0.9'"
# math-verify's own limit on one parse or comparison, in seconds (a SIGALRM: main thread only)
TIMEOUT_S = 5

_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*\$?\s*([^\n]+?)\s*(?:\.\s*$|$)",
    re.IGNORECASE | re.MULTILINE,
)
_HASHES = re.compile(r"####\s*([^\n]+)")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
# a plain decimal number; commas only as thousands separators ("1,000", not "1,2")
_PLAIN = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+")


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


def _plain_number(s: str) -> Decimal | None:
    """``s`` as an exact decimal if it is a plain number (a ``$`` sign, a ``%`` suffix,
    thousands commas and a final full stop allowed), else ``None``."""
    t = s.strip().replace("$", "").rstrip(".").strip().removesuffix("%").strip()
    if not _PLAIN.fullmatch(t):
        return None
    return Decimal(t.replace(",", ""))


def _math_verify() -> Any:
    """The math_verify module, or a ConfigError that says how to install it."""
    try:
        import math_verify
    except ImportError as e:
        raise ConfigError(
            f"math-verify is not installed (answer equivalence needs it): {MATH_VERIFY_HINT}"
        ) from e
    return math_verify


def same_answer(answer: str | None, reference: str | None) -> bool:
    """Whether two final answers are mathematically equal (math-verify; plain decimal numbers
    are compared exactly first, so "1,000" equals "1000.00"). ``None`` never equals anything.
    Raises :class:`ConfigError` if math-verify is not installed."""
    mv = _math_verify()  # checked on every call: a missing install fails at once, not later
    if answer is None or reference is None:
        return False
    a, b = _plain_number(answer), _plain_number(reference)
    if a is not None and b is not None:
        return a == b
    # math-verify times out with SIGALRM, which only the main thread may set
    limit = TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        gold = (mv.parse(f"${reference}$", parsing_timeout=limit)
                or mv.parse(reference, parsing_timeout=limit))
        pred = (mv.parse(f"${answer}$", parsing_timeout=limit)
                or mv.parse(answer, parsing_timeout=limit))
        return bool(mv.verify(gold, pred, timeout_seconds=limit))
    except Exception as e:  # math-verify can raise on odd LaTeX; that is "not the same"
        log.debug("math-verify failed on %r vs %r: %s", answer, reference, e)
        return False
