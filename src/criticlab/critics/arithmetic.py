"""A model-free critic: re-compute every arithmetic claim in each step, exactly.

Claims are found by :mod:`criticlab.critics.arith_claims` (GSM8K ``<<expr=value>>``
annotations, plain text, LaTeX, percents, currency, thousands separators) and evaluated with
:class:`fractions.Fraction`. A stated value is accepted when it equals the exact value or is
a rounding the text itself shows:

- rounded to the number of decimals written (``10/3 = 3.33``, ``2/3 = 0.67``);
- within one unit of the last written digit (truncation, ``2/3 = 0.66``) and rounding to a
  whole number (``45/4 = 11``) only when the claim is "≈" or the step says it rounds
  ("about", "approximately", "round", "whole", "remainder", ...);
- "≈ 1,200" for 1,234: a "≈" value with trailing zeros is rounded to that place.

A percent is read both ways ("50 * 20% = 10" and "10/50 * 100 = 20%"), and a running total
("2 * 3 = 6 * 2 = 12") checks each link. A mismatch is not reported when the text suggests
it is not arithmetic equality: a compound quantity on the right ("= 3 hours 20 minutes") or a
unit conversion ("2 * 3 feet = 72 inches" or "$1 / 2 = 50 cents"), or a change of scale in
a step that counts in thousands or millions. In a step about residues ("mod 17") a claim
that holds modulo a modulus named in the step is right; in one about bases or carries a
mismatch is not checked. When in doubt the critic says "unknown", never "correct".

The cost is linear in the step's length, and a step longer than :data:`MAX_STEP_CHARS`
characters is not read at all: its verdict is "unknown" and the explanation says why.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from criticlab.critics.arith_claims import Claim, Side, extract_claims
from criticlab.critics.arith_parse import (
    Bin,
    Expr,
    Neg,
    Num,
    Pct,
    evaluate,
    has_percent,
    interval,
)
from criticlab.critics.arith_text import MAX_NUMBER_CHARS
from criticlab.critics.base import first_incorrect
from criticlab.types import Critique, Overall, Problem, Solution, StepVerdict, Verdict

log = logging.getLogger(__name__)

__all__ = [
    "MAX_STEP_CHARS", "ArithmeticCritic", "ClaimCheck", "check_claim", "check_claims",
    "check_step", "extract_claims",
]

# The longest step the verifier reads: 13 times ProcessBench's longest (1,470 characters), and
# at most about 0.2 s of work for the costliest text (a chain of claims like "1+1=2 1+1=2 ...").
# A longer step is "unknown", "not checked" with the bound named, never "correct".
MAX_STEP_CHARS = 20_000

_CUE = re.compile(
    r"\b(?:approx\w*|about|around|roughly|nearly|almost|estimat\w*|round\w*|whole|remainder"
    r"|full|complete|integer|can'?t|cannot|leftover)\b|≈|~|\\approx"
    r"|\bwith\s+\d+\s+(?:\w+\s+)?(?:remaining|left)",
    re.IGNORECASE,
)
# factors between common units: a mismatch by one of them next to different unit words is
# read as a conversion ("2 * 3 feet = 72 inches"), not a slip
_UNIT_FACTORS = frozenset(
    Fraction(f) for f in (10, 12, 16, 24, 36, 52, 60, 100, 144, 365, 1000, 1024, 3600, 5280)
)


# Every pattern here is linear in the text: no quantifier is nested in another or followed by
# one that can match the same characters ("\s*\{?\s*" is written "\s*+(?:\{\s*+)?"), and no
# lookahead scans to the end of a sentence from every match (see _not_decimal).

# modular, base-n or digit-by-digit arithmetic: "=" may not be plain equality of numbers
_NOT_DECIMAL = re.compile(
    r"\bmod(?:ulo)?\b|\\[pb]?mod\b|\\equiv|≡|\bcongruen|\bbase[\s$\\(-]*+\d"
    # "carry" as in column addition ("carry the 1", "carry over"), not "carried 5 balls"
    r"|\bcarr(?:y|ies|ied)\s++(?:the\s++|a\s++)?(?:over\b|\d(?=\s*+(?:$|[.,;:)]|(?:over|to"
    r"|into|onto|in|and|so|then|from)\b)))",
    re.IGNORECASE,
)
# ... or "carry" with "digit(s)" or "column(s)" later in its sentence
_CARRY = re.compile(r"\bcarr(?:y|ies|ied)\b", re.IGNORECASE)
_DIGIT_WORD = re.compile(r"\b(?:digit|column)s?\b", re.IGNORECASE)
_MODULUS = re.compile(r"(?:\\[pb]?mod|\bmod(?:ulo)?)\s*+(?:\{\s*+)?(?:\$\s*+)?(\d+)",
                      re.IGNORECASE)
_SCALE_WORD = re.compile(r"\b(?:thousands?|millions?|billions?|trillions?)\b|\d\s?[kKMB]\b")
_SCALES = frozenset(Fraction(10**k) for k in (3, 6, 9, 12))


_UNIT_KINDS = {
    "time": "second sec minute min hour hr day week month year",
    "length": "inch inche foot feet ft yard yd mile mi meter metre centimeter cm millimeter mm "
              "kilometer km",
    "mass": "ounce oz pound lb gram kilogram kg ton",
    "money": "dollar cent penny pennie nickel dime euro",
    "volume": "cup pint quart gallon liter litre ml milliliter tablespoon teaspoon",
    "data": "kb mb gb tb byte kilobyte megabyte gigabyte",
}
_UNIT_NAMES = {name: (kind, "foot" if name == "feet" else name)
               for kind, names in _UNIT_KINDS.items() for name in names.split()}


@dataclass(frozen=True)
class ClaimCheck:
    """The verdict on one claim: ``ok`` is True (holds), False (wrong) or None (skipped as
    ambiguous). ``value`` is the exact value of the left side."""

    claim: Claim
    ok: bool | None
    value: Fraction | None
    message: str


def format_value(x: Fraction) -> str:
    """Exact decimal when it terminates ("12.375"), else the fraction and a rounding
    ("10/3 (≈ 3.3333)")."""
    if x.denominator == 1:
        return str(x.numerator) if x.numerator.bit_length() < 80 else _scientific(x)
    d, k = x.denominator, 0
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d == 1:
        k = 0
        while (x * 10**k).denominator != 1:
            k += 1
        n = abs(x.numerator * 10**k // x.denominator)
        digits = str(n).rjust(k + 1, "0")
        sign = "-" if x < 0 else ""
        if len(digits) <= 24:
            return f"{sign}{digits[:-k]}.{digits[-k:]}"
    if len(str(x.numerator)) + len(str(x.denominator)) > 24:
        return _scientific(x)
    return f"{x.numerator}/{x.denominator} (≈ {float(x):.4f})"


def _scientific(x: Fraction) -> str:
    """"≈ 3.81194e+36" for any size (``float(x)`` overflows past 1e308)."""
    a = abs(x)
    e = len(str(a.numerator)) - len(str(a.denominator))
    m = a / Fraction(10) ** e
    while m >= 10:
        m, e = m / 10, e + 1
    while m < 1:
        m, e = m * 10, e - 1
    return f"≈ {'-' if x < 0 else ''}{float(m):.6g}e{e:+d}"


def _simple_values(e: Expr) -> list[tuple[Fraction, int]] | None:
    """(value, decimals written) readings of a right side that is a single number."""
    sign = 1
    if isinstance(e, Neg):
        sign, e = -1, e.arg
    if isinstance(e, Num):
        return [(sign * e.value, e.decimals)]
    if isinstance(e, Pct) and isinstance(e.arg, Num):
        v, d = sign * e.arg.value, e.arg.decimals
        return [(v / 100, d + 2), (v, d)]
    return None


def _readings(side: Side) -> list[tuple[Expr, bool]]:
    """(expression, percent as /100) pairs: both readings of "20%" and of "500/ 1/10"."""
    exprs = [side.expr] if side.alternative is None else [side.expr, side.alternative]
    modes = (True, False) if has_percent(side.expr) else (True,)
    return [(e, m) for e in exprs for m in modes]


def _values(side: Side) -> list[Fraction]:
    vals = [evaluate(e, m) for e, m in _readings(side)]
    return [v for v in vals if v is not None]


def _bounds(side: Side, rounded_from: int = 3) -> list[tuple[Fraction, Fraction]]:
    out = [interval(e, m, rounded_from) for e, m in _readings(side)]
    return [b for b in out if b is not None]


def _close(x: Fraction, v: Fraction, decimals: int, loose: bool, approx: bool) -> bool:
    if x == v:
        return True
    if approx and decimals >= 2 and abs(x - v) * 200 <= abs(x):
        return True  # "≈ 1.279" for 1.2756: a loose approximation, within 0.5%
    unit = Fraction(1, 10**decimals)
    diff = abs(x - v)
    if decimals > 0 and diff * 2 <= unit:
        return True  # rounded to the decimals written
    if (loose or approx) and diff < unit:
        return True  # rounded to a whole number, or truncated, where the text says so
    if approx and v.denominator == 1 and v != 0:
        zeros = len(str(abs(v.numerator))) - len(str(abs(v.numerator)).rstrip("0"))
        return zeros > 0 and diff * 2 <= 10**zeros
    return False


def check_claim(claim: Claim, loose: bool = False, scaled: bool = False) -> ClaimCheck:
    """Check one claim. ``loose`` says the surrounding text admits rounding (see the module
    docstring); ``scaled`` that it counts in thousands or millions, so a value off by exactly
    such a factor is a change of scale ("5 * 3 = $15,000" after "5 thousand dollars")."""
    approx = claim.relation == "≈"
    lvals = _values(claim.left)
    if not lvals:
        return ClaimCheck(claim, None, None, f'"{claim.text}": cannot evaluate the left side')
    x = lvals[0]
    simple = _simple_values(claim.right.expr)
    if simple is not None:
        # the point of the left side's bounds nearest to the stated value: inputs written
        # with 3+ decimals may be roundings themselves
        bounds = _bounds(claim.left) or [(lv, lv) for lv in lvals]
        if any(_close(min(max(v, lo), hi), v, d, loose, approx)
               for lo, hi in bounds for v, d in simple):
            return ClaimCheck(claim, True, x, "")
        stated = simple[0][0]
    else:
        rvals = _values(claim.right)
        if not rvals:
            return ClaimCheck(claim, None, x, f'"{claim.text}": cannot evaluate the right side')
        if any(lv == rv for lv in lvals for rv in rvals):
            return ClaimCheck(claim, True, x, "")
        if _running_total(claim.right.expr, lvals, loose, approx):
            return ClaimCheck(claim, True, x, "")
        # "2/3 * 3 = 0.67 * 3": equal up to the rounding of the decimals written on the right
        if any(lo <= rhi and rlo <= hi for lo, hi in _bounds(claim.left)
               for rlo, rhi in _bounds(claim.right, rounded_from=1)):
            return ClaimCheck(claim, True, x, "")
        stated = rvals[0]
    if claim.then_number:
        return ClaimCheck(claim, None, x, f'"{claim.text}": a compound quantity, not checked')
    ratio = abs(stated / x) if x and stated else Fraction(1)
    if _looks_like_conversion(claim, x, stated) or (
            scaled and (ratio in _SCALES or 1 / ratio in _SCALES)):
        return ClaimCheck(claim, None, x, f'"{claim.text}": looks like a unit conversion')
    value = format_value(x)
    sep = " " if value.startswith("≈") else " = "
    return ClaimCheck(claim, False, x, f'"{claim.text}" is wrong: {claim.left.text}{sep}{value}')


def _running_total(right: Expr, lvals: list[Fraction], loose: bool, approx: bool) -> bool:
    """"2 * 3 = 6 * 2 = 12" and "3/3 - 2/3 = 1/3 of 150": the right side goes on from the
    left side's value (some left operand of it equals that value)."""
    e = right
    while isinstance(e, Bin):
        e = e.left
        if isinstance(e, Num):
            return any(_close(lv, e.value, e.decimals, loose, approx) for lv in lvals)
        v = evaluate(e)
        if v is not None and v in lvals:
            return True
    return False


def _families(units: frozenset[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for u in units:
        unit = _UNIT_NAMES.get(u) or _UNIT_NAMES.get(u.rstrip("s"))
        if unit is not None:
            out.setdefault(unit[0], set()).add(unit[1])
    return out


def _looks_like_conversion(claim: Claim, x: Fraction, stated: Fraction) -> bool:
    """Mixed or converted units: two units of one kind on the left ("4 pounds - 6 ounces"),
    or another unit of that kind on the right ("$1 / 2 = 50 cents"); or different unit words
    on the two sides and either a common conversion factor between the values or a bare
    fraction on the left ("1/2 inch = 20 miles" is a scale)."""
    lu, ru = claim.left.units, claim.right.units
    lf, rf = _families(lu), _families(ru)
    if any(len(v) > 1 for v in lf.values()):
        return True
    if any(kind in lf and lf[kind] != names for kind, names in rf.items()):
        return True
    if not lu or not ru or lu & ru or x == 0 or stated == 0:
        return False
    e = claim.left.expr
    if isinstance(e, Bin) and e.op == "/" and isinstance(e.left, Num) and isinstance(e.right, Num):
        return True
    ratio = abs(stated / x)
    return ratio in _UNIT_FACTORS or 1 / ratio in _UNIT_FACTORS


def _modular(check: ClaimCheck, moduli: list[int]) -> ClaimCheck:
    """A wrong claim in a step about residues, bases or carries: right if it holds modulo a
    modulus the step names ("4^4 = 1 (mod 17)"), not checked if the step names none."""
    c, x = check.claim, check.value
    stated = evaluate(c.right.expr)
    if x is None or stated is None or x.denominator != 1 or stated.denominator != 1:
        return check
    if not moduli:
        return ClaimCheck(c, None, x, f'"{c.text}": modular or base-n arithmetic, not checked')
    if any((x - stated) % m == 0 for m in moduli):
        return ClaimCheck(c, True, x, "")
    return ClaimCheck(c, False, x, check.message + f" (not even modulo {moduli[0]})")


def check_step(text: str, index: int = 0) -> StepVerdict:
    """Verdict on one step: "incorrect" when a claim is wrong (the explanation names it and
    the right value), "correct" when it has at least one checkable claim and all hold,
    "unknown" when it has none. ``score`` is 1.0, 0.0 or None accordingly. A step longer than
    :data:`MAX_STEP_CHARS` is not read: "unknown", with the length and the bound."""
    if len(text) > MAX_STEP_CHARS:
        return StepVerdict(index, "unknown", _too_long(len(text)), None)
    return StepVerdict(index, *_judge(text))


# Rollouts of one prompt share steps (a GRPO group restates the same facts): a step's verdict is
# a pure function of its text, so the latest ones are kept. At most MAX_STEP_CHARS characters a
# key, so the cache holds a bounded amount of text.
@lru_cache(maxsize=2048)
def _judge(text: str) -> tuple[Verdict, str, float | None]:
    checks = check_claims(text)
    wrong = [c for c in checks if c.ok is False]
    if wrong:
        return "incorrect", "; ".join(c.message for c in wrong), 0.0
    held = [c for c in checks if c.ok]
    if held:
        return "correct", "checked: " + "; ".join(c.claim.text for c in held), 1.0
    skipped = [c.message for c in checks if c.message]
    why = "no arithmetic claim to check"
    if skipped:
        why += " (" + "; ".join(skipped) + ")"
    return "unknown", why, None


def _not_decimal(text: str) -> bool:
    """Whether the step is about residues, bases or carries (its "=" may not be equality)."""
    if _NOT_DECIMAL.search(text) is not None:
        return True
    # "carry" and, before the next ".", "digit(s)"/"column(s)": one sentence at a time, as a
    # lookahead "(?=[^.]*digit)" from every "carry" would re-read the sentence each time
    pos = 0
    while (m := _CARRY.search(text, pos)) is not None:
        end = text.find(".", m.end())
        end = len(text) if end < 0 else end
        if _DIGIT_WORD.search(text, m.end(), end) is not None:
            return True
        pos = end
    return False


def _too_long(n: int) -> str:
    return (f"not checked: the step has {n:,} characters, more than the {MAX_STEP_CHARS:,} the "
            "arithmetic verifier reads (MAX_STEP_CHARS)")


def check_claims(text: str) -> list[ClaimCheck]:
    """Every distinct claim of one step with its check, in order. The cost is linear in
    ``text``, which is read whatever its length (:func:`check_step` bounds it)."""
    claims = extract_claims(text)
    if not claims:
        return []
    # what the whole step says (rounding, scale, residues) is read only for a step with claims,
    # and residues only once a claim is wrong
    loose = _CUE.search(text) is not None
    scaled = _SCALE_WORD.search(text) is not None
    modular: bool | None = None
    moduli: list[int] = []
    seen: set[tuple[str, str]] = set()
    checks: list[ClaimCheck] = []
    for c in claims:
        key = (c.left.text, c.right.text)
        if key in seen:
            continue
        seen.add(key)
        check = check_claim(c, loose, scaled)
        if check.ok is False:
            if modular is None:
                modular = _not_decimal(text)
                if modular:
                    moduli = [int(m) for m in _MODULUS.findall(text)
                              if len(m) <= MAX_NUMBER_CHARS and int(m) > 1]
            if modular:
                check = _modular(check, moduli)
        checks.append(check)
    return checks


class ArithmeticCritic:
    """Re-computes every "expression = value" claim in each step exactly (no model).

    Per step: "incorrect" when some claim is wrong, "correct" when the step has at least one
    checkable claim and all hold, "unknown" when it has none (never "correct" for a step
    without a claim). ``first_error`` is the earliest incorrect step. The overall verdict is
    "incorrect" when any step is; otherwise "correct" if at least one step had a checked
    claim, and ``None`` when no step had one (the verifier cannot say). Only arithmetic is
    judged: a solution with wrong reasoning but right sums is "correct" here. The problem
    text is not used.
    """

    name = "arithmetic"

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        # in a worker thread: a long solution takes a while, and the event loop (a server's
        # other requests, a job's model calls) must not wait for it
        return await asyncio.to_thread(self.critique_blocking, problem, solution)

    def critique_blocking(self, problem: Problem, solution: Solution) -> Critique:
        """``critique`` in the calling thread."""
        steps = tuple(_check_step_safely(text, i) for i, text in enumerate(solution.steps))
        first_error = first_incorrect(steps)
        verdict: Overall | None
        if first_error is not None:
            verdict = "incorrect"
            feedback = f"Step {first_error + 1}: {steps[first_error].explanation}"
            more = sum(s.verdict == "incorrect" for s in steps) - 1
            if more:
                feedback += f" (and {more} later step{'s' if more > 1 else ''} with errors)"
        elif any(s.verdict == "correct" for s in steps):
            verdict = "correct"
            feedback = f"All arithmetic checked in {_count(steps, 'correct')} step(s) is right."
        else:
            verdict = None
            feedback = "No checkable arithmetic claim; the arithmetic verifier cannot judge."
        unread = [i + 1 for i, text in enumerate(solution.steps) if len(text) > MAX_STEP_CHARS]
        if unread:
            feedback += (f" Not checked, longer than {MAX_STEP_CHARS:,} characters: step"
                         f"{'s' if len(unread) > 1 else ''} {', '.join(map(str, unread))}.")
        score = None if verdict is None else float(verdict == "correct")
        return Critique(steps=steps, first_error=first_error, verdict=verdict,
                        feedback=feedback, score=score, parsed=True, critic=self.name)


def _check_step_safely(text: str, index: int) -> StepVerdict:
    # a verifier over arbitrary text must not stop a run; a failure here is a bug to log
    try:
        return check_step(text, index)
    except (ValueError, ArithmeticError, RecursionError) as e:
        log.warning("arithmetic verifier failed on step %d: %r", index, e)
        return StepVerdict(index, "unknown", f"verifier error: {e!r}", None)


def _count(steps: tuple[StepVerdict, ...], verdict: Verdict) -> int:
    return sum(s.verdict == verdict for s in steps)
