"""The five error types injected into a GSM8K reference solution, one change each.

Each function makes one named change to a parsed solution (:mod:`criticlab.label.trace`)
and returns the erroneous solution with its label, or ``None`` when the change does not
apply there. Later steps are recomputed from the changed value
(:mod:`criticlab.label.recompute`), so the solution goes on consistently from the error,
and the label is the first wrong step:

- ``calculation``: one annotation's result is written wrong (``<<9*2=18>>18`` becomes
  ``<<9*2=17>>17``): off by 1-3 units of its last non-zero digit, one digit changed, or
  two adjacent digits swapped (:func:`misreadings`). The slip differs from the exact
  value by at least one unit of its own last digit, also when numbers written with 3+
  decimals are taken as roundings, so no reading as a rounding makes it right. Label: that
  step.
- ``copied_number``: one number of an annotation's expression is replaced by another
  number of the question or of an earlier step's result (one of the same kind, whole or
  not, and within a factor of 10 when there is one), and the result is recomputed: the
  step's arithmetic is right, the number it uses is wrong. Label: that step.
- ``wrong_operation``: one operator of an annotation's expression is swapped (``+`` and
  ``-``, ``*`` and ``/``) and the result recomputed. Label: that step.
- ``dropped_step``: a step is removed; each of its results becomes the value of the first
  number of its expression (the quantity the step would have changed: "16-3-4=9" dropped
  leaves 16), and later steps use that. Label: the first remaining step that uses a
  dropped result (in the new numbering).
- ``premise``: one quantity of the question is changed (a misreading, as for
  ``calculation``, to a value not already in the question) and the solution is left
  as it was, so it answers the original question. Label: the first step that uses or
  states the quantity; the reference answer is the answer to the changed question, got by
  recomputing the solution with the changed quantity (so it is right as far as the
  solution's calculations follow the question). Only a number written once in the
  question, used as a constant by some calculation, equal to no result, and not a value
  that a word may also stand for ("half", "dozen", "hours") is misread, and only so that
  every whole-number result stays whole.

The first three change a calculation: an annotation with an operator ("<<6=6>>" restates a
value). copied_number and wrong_operation change one whose visible expression either
repeats the annotation (and is rewritten with it) or is absent, so the step stays
arithmetically consistent. Changes that make a value negative where the reference's was
not, or that divide by zero, do not apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from random import Random

from criticlab.label.recompute import Change, apply, restyle, swap
from criticlab.label.trace import Trace, decimals, number, number_spans

ERROR_TYPES: tuple[str, ...] = (
    "calculation", "copied_number", "wrong_operation", "dropped_step", "premise",
)

# values a question or solution may also mean by a word ("half", "hours": 60 minutes),
# so a digit of that value in the question is not a safe quantity to misread
_IMPLIED: dict[int, str] = {
    2: "two half halves halved twice double doubled pair pairs second",
    3: "three third thirds triple tripled thrice yard yards",
    4: "four fourth quarter quarters quart quarts gallon gallons",
    5: "five fifth fifths nickel nickels",
    6: "six sixth",
    7: "seven week weeks",
    8: "eight eighth",
    9: "nine",
    10: "ten tenth tenths dime dimes",
    11: "eleven",
    12: "twelve dozen dozens foot feet inch inches month months year years",
    16: "sixteen ounce ounces pound pounds",
    20: "twenty",
    24: "hour hours day days",
    25: "quarter quarters",
    30: "thirty month months",
    52: "week weeks year years",
    60: "sixty minute minutes hour hours second seconds",
    100: "hundred percent cent cents century meter meters",
    365: "year years day days",
    1000: "thousand gram grams kilogram kilograms meter meters",
}
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Injection:
    """An erroneous solution. ``step`` is the reference step changed or removed (``None``
    for a premise flaw); ``before``/``after`` say what changed, for people and critiques."""

    error_type: str
    question: str
    steps: tuple[str, ...]
    label: int
    final_answer: str
    reference_answer: str
    step: int | None
    before: str
    after: str


def calculation(question: str, trace: Trace, ann: int, wrong: str) -> Injection | None:
    """Annotation ``ann`` states ``wrong`` instead of its value. ``None`` unless ``wrong``
    is clearly wrong (see the module docstring)."""
    a = trace.anns[ann]
    w = number(wrong)
    if a.exact is None:
        return None
    lo, hi = a.bounds or (a.exact, a.exact)
    unit = Fraction(1, 10 ** decimals(wrong))
    if lo - unit < w < hi + unit:
        return None
    out = apply(trace, Change(forced={a.id: wrong}))
    if out is None:
        return None
    return Injection("calculation", question, out.steps, a.step, out.final, trace.final,
                     a.step, f"{a.expr}={a.stated}", f"{a.expr}={wrong}")


def copied_number(question: str, trace: Trace, tok: int, new: str) -> Injection | None:
    """Number ``tok`` of an annotation's expression becomes ``new``."""
    t = trace.toks[tok]
    if t.role != "expr" or t.ann is None or number(new) == t.value:
        return None
    a = trace.anns[t.ann]
    if a.claim and not a.aligned:
        return None
    out = apply(trace, Change(texts={tok: new}))
    if out is None:
        return None
    after = a.expr[: t.start - _expr_start(trace, a.id)] + new \
        + a.expr[t.end - _expr_start(trace, a.id):]
    return Injection("copied_number", question, out.steps, a.step, out.final, trace.final,
                     a.step, a.expr, after)


def wrong_operation(question: str, trace: Trace, ann: int, k: int) -> Injection | None:
    """Operator ``k`` of annotation ``ann`` is swapped; ``None`` when that changes no
    value (``*1`` to ``/1``)."""
    a = trace.anns[ann]
    op = a.ops[k]
    if a.claim and (a.aligned != "order" or op.visible is None):
        return None
    new = swap(op.char)
    out = apply(trace, Change(ops={(a.id, k): new}))
    if out is None or a.id not in out.values:
        return None
    i = op.pos - _expr_start(trace, a.id)
    return Injection("wrong_operation", question, out.steps, a.step, out.final, trace.final,
                     a.step, a.expr, a.expr[:i] + new + a.expr[i + 1 :])


def dropped_step(question: str, trace: Trace, step: int) -> Injection | None:
    """Step ``step`` is removed; ``None`` when no later step uses its results."""
    if not any(a.step == step for a in trace.anns) or len(trace.steps) < 2:
        return None
    out = apply(trace, Change(drop=step))
    later = [s for s in (out.changed if out else ()) if s > step]
    if out is None or not later:
        return None
    return Injection("dropped_step", question, out.steps, later[0] - 1, out.final,
                     trace.final, step, trace.steps[step], "")


def premise(question: str, trace: Trace, start: int, end: int, new: str) -> Injection | None:
    """The question's number at ``question[start:end]`` becomes ``new``; the solution keeps
    using the old one. ``None`` when no step's expression uses it as a constant, or when
    the change makes a whole-number result fractional (the changed question should stay a
    well-posed problem with an exact answer)."""
    old = question[start:end]
    uses = trace.constants(number(old))
    if not any(t.role == "expr" for t in uses):
        return None
    out = apply(trace, Change(texts={t.id: new for t in uses}))
    if out is None or not out.changed or any(
            trace.anns[i].value.denominator == 1 and number(v).denominator != 1
            for i, v in out.values.items()):
        return None
    changed_q = question[:start] + restyle(new, old) + question[end:]
    return Injection("premise", changed_q, trace.steps, out.changed[0], trace.final,
                     out.final, None, old, restyle(new, old))


def _expr_start(trace: Trace, ann: int) -> int:
    return trace.anns[ann].expr_span[0]


# -- choosing sites and values at random ------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """Where an error of one type can go: ``step`` (to spread errors over steps) and what
    to try there."""

    error_type: str
    step: int
    key: tuple[int, ...]


def sites(error_type: str, question: str, trace: Trace) -> list[Site]:
    """Every place an error of ``error_type`` may apply, in a fixed order. Calculations are
    the annotations with an operator ("<<6=6>>" is a restatement, not a calculation)."""
    calcs = [a for a in trace.anns if a.kind == "annotation" and a.ops and a.consistent]
    if error_type == "calculation":
        return [Site(error_type, a.step, (a.id,)) for a in calcs]
    if error_type == "copied_number":
        return [Site(error_type, a.step, (t,)) for a in calcs for t in a.nums]
    if error_type == "wrong_operation":
        return [Site(error_type, a.step, (a.id, k)) for a in calcs for k in range(len(a.ops))]
    if error_type == "dropped_step":
        steps = sorted({a.step for a in trace.anns if a.step < len(trace.steps) - 1})
        return [Site(error_type, s, (s,)) for s in steps]
    if error_type == "premise":
        out = []
        for start, end in premise_numbers(question, trace):
            uses = trace.constants(number(question[start:end]))
            out.append(Site(error_type, min(t.step for t in uses), (start, end)))
        return out
    raise ValueError(f"unknown error type {error_type!r}")


def premise_numbers(question: str, trace: Trace) -> list[tuple[int, int]]:
    """Spans of the question's numbers that are safe to misread: written once, not part of
    a fraction or a time, used as a constant by some step's expression, equal to no result,
    and not a value that a word of the question or solution may also stand for."""
    found = number_spans(question)
    values = [number(question[a:b]) for a, b in found]
    words = set(_WORD.findall((question + " " + " ".join(trace.steps)).lower()))
    results = {a.value for a in trace.anns}
    out = []
    for (a, b), v in zip(found, values, strict=True):
        implied = v.denominator == 1 and words & set(_IMPLIED.get(v.numerator, "").split())
        if values.count(v) != 1 or v in (0, 1) or implied or v in results:
            continue
        if question[b : b + 1] == "%" and any(t.value == v / 100 for t in trace.toks):
            continue
        if any(t.role == "expr" for t in trace.constants(v)):
            out.append((a, b))
    return out


def build(site: Site, question: str, trace: Trace, rng: Random) -> Injection | None:
    """An injection at ``site``, with its wrong value drawn from ``rng``; ``None`` when no
    value applies there."""
    t = site.error_type
    if t == "calculation":
        a = trace.anns[site.key[0]]
        for w in misreadings(a.stated, rng):
            inj = calculation(question, trace, a.id, w)
            if inj is not None:
                return inj
        return None
    if t == "copied_number":
        tok = trace.toks[site.key[0]]
        pool = copy_sources(question, trace, tok.step)
        rng.shuffle(pool)
        # a number like the one it replaces is the likelier slip: the same kind (whole or
        # not) within a factor of 10 first, then any within a factor of 100
        pool.sort(key=lambda c: (not _alike(number(c), tok.value, 10, True),
                                 not _alike(number(c), tok.value, 100, False)))
        for new in pool:
            inj = copied_number(question, trace, tok.id, new)
            if inj is not None:
                return inj
        return None
    if t == "wrong_operation":
        return wrong_operation(question, trace, *site.key)
    if t == "dropped_step":
        return dropped_step(question, trace, site.key[0])
    start, end = site.key
    old = number(question[start:end])
    taken = {number(question[a:b]) for a, b in number_spans(question)}
    for new in misreadings(question[start:end].replace(",", ""), rng):
        if number(new) not in taken and number(new) != old:
            inj = premise(question, trace, start, end, new)
            if inj is not None:
                return inj
    return None


def _alike(a: Fraction, b: Fraction, factor: int, same_kind: bool) -> bool:
    if a <= 0 or b <= 0 or (same_kind and (a.denominator == 1) != (b.denominator == 1)):
        return False
    return a / b <= factor and b / a <= factor


def copy_sources(question: str, trace: Trace, step: int) -> list[str]:
    """The numbers a step could copy by mistake: the question's and earlier results."""
    texts = [question[a:b].replace(",", "") for a, b in number_spans(question)]
    texts += [a.stated for a in trace.anns if a.step < step]
    seen: set[Fraction] = set()
    out = []
    for t in texts:
        if number(t) not in seen:
            seen.add(number(t))
            out.append(t)
    return out


def misreadings(text: str, rng: Random) -> list[str]:
    """Wrong values a person could write for the number ``text``, in random order: off by
    1-3 units of its last non-zero place, one digit changed, or two adjacent digits
    swapped (the kinds in random order, each kind shuffled). Same sign, same decimals,
    never zero, never equal to ``text``."""
    if not re.fullmatch(r"-?(?:\d+(?:\.\d+)?|\.\d+)", text):
        return []  # "3/4": not a decimal to slip on
    sign, body = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, frac = body.partition(".")
    whole = whole or "0"
    digits, d = whole + frac, len(frac)
    v = number(body)

    def fmt(n: int) -> str | None:
        s = str(n).rjust(d + 1, "0")
        w = s[: len(s) - d] + ("." + s[len(s) - d :] if d else "")
        return None if n == 0 or number(w) == v else sign + w

    base = int(digits)
    zeros = 0 if d else len(whole) - len(whole.rstrip("0"))
    if base == 0:
        zeros = 0
    unit = 10**min(zeros, len(whole) - 1)
    kinds: dict[str, list[str | None]] = {
        "off_by": [fmt(base + s * k * unit) for k in (1, 2, 3) for s in (1, -1)
                   if base + s * k * unit > 0],
        "digit": [], "swap": [],
    }
    for i, c in enumerate(digits):
        for nd in "0123456789":
            if nd != c and not (i == 0 and nd == "0" and len(whole) > 1):
                kinds["digit"].append(fmt(int(digits[:i] + nd + digits[i + 1 :])))
        j = i + 1
        if j < len(digits) and digits[j] != c and (j < len(whole)) == (i < len(whole)) \
                and not (i == 0 and digits[j] == "0" and len(whole) > 1):
            kinds["swap"].append(fmt(int(digits[:i] + digits[j] + c + digits[j + 1 :])))
    order = list(kinds)
    rng.shuffle(order)
    out: list[str] = []
    for k in order:
        group = [w for w in kinds[k] if w is not None]
        rng.shuffle(group)
        out.extend(w for w in group if w not in out)
    return out
