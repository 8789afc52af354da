"""Recomputing a traced GSM8K solution after a change, and writing the new numbers.

:func:`apply` changes some tokens, operators or results of a
:class:`~criticlab.label.trace.Trace` and recomputes every later annotation that depends
on a changed value, exactly (:mod:`criticlab.critics.arith_parse`), rewriting the step
text to match. Steps before the first change are returned unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from criticlab.label.trace import OPS, Ann, Tok, Trace, decimals, evaluate_text, number

_SWAP = {"+": "-", "-": "+", "*": "/", "/": "*"}
# how the swap of each operator is written in a visible expression
_VISIBLE_SWAP = {"+": "-", "-": "+", "−": "+", "*": "/", "x": "/", "X": "/", "×": "÷",
                 "·": "/", "/": "*", "÷": "×"}


@dataclass(frozen=True)
class Change:
    """What to change. ``texts``: token id -> new number (plain); ``ops``: (annotation id,
    operator index) -> new operator; ``forced``: annotation id -> a stated value that its
    expression does not give (a slip); ``drop``: a step to remove, each of whose results
    becomes the value of its expression's first number."""

    texts: Mapping[int, str] = field(default_factory=dict)
    ops: Mapping[tuple[int, int], str] = field(default_factory=dict)
    forced: Mapping[int, str] = field(default_factory=dict)
    drop: int | None = None


@dataclass(frozen=True)
class Outcome:
    steps: tuple[str, ...]  # without the dropped step
    final: str
    changed: tuple[int, ...]  # steps (original numbering) whose text changed
    values: Mapping[int, str]  # annotation id -> new stated value


def format_number(x: Fraction, like: str = "") -> str:
    """Plain text of ``x``: an integer as an integer, a terminating decimal exactly (up to 6
    decimals), else rounded half away from zero to the decimals of ``like`` (at least 2,
    and enough to show two significant digits)."""
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    k = 1
    while d == 1 and (x * 10**k).denominator != 1:
        k += 1
    rounded = d != 1 or k > 6
    if rounded:
        k = max(2, decimals(like))
        while abs(x) * 10**k < 10 and k < 12:
            k += 1
    n = int(abs(x) * 10**k + Fraction(1, 2))
    digits = str(n).rjust(k + 1, "0")
    # a rounding keeps its decimals ("25.00" for 24.998): they say how far it may be off
    text = f"{digits[:-k]}.{digits[-k:]}"
    return ("-" if x < 0 and n else "") + (text if rounded else text.rstrip("0"))


def restyle(plain: str, like: str) -> str:
    """``plain`` written the way ``like`` was: thousands separators, two decimals (money)."""
    sign, body = ("-", plain[1:]) if plain.startswith("-") else ("", plain)
    whole, dot, frac = body.partition(".")
    if decimals(like) == 2 and len(frac) < 2 and not like.startswith("."):
        dot, frac = ".", frac.ljust(2, "0")
    if "," in like and len(whole) > 3:
        whole = f"{int(whole):,}"
    return sign + whole + dot + frac


def swap(op: str) -> str:
    return _SWAP[op]


def apply(trace: Trace, change: Change) -> Outcome | None:
    """Make ``change`` and recompute everything that depends on it. ``None`` when that is
    impossible: an expression that cannot be evaluated (or divides by zero), or a value
    that turns negative where the reference's was not (a count below zero)."""
    vals: dict[int, str] = {}
    toks = trace.toks

    def cur(t: Tok) -> str:
        if t.id in change.texts:
            return change.texts[t.id]
        if t.src is not None and t.src in vals:
            return vals[t.src]
        return t.text

    for a in trace.anns:
        if a.step == change.drop:
            first = cur(toks[a.nums[0]]) if a.nums else a.stated
            new = first
        elif a.id in change.forced:
            new = change.forced[a.id]
        else:
            expr = _render_expr(trace, a, change, cur)
            if expr == a.expr:
                continue
            x = evaluate_text(expr)
            if x is None:
                return None
            new = format_number(x * a.scale, a.stated)
        if number(new) < 0 <= a.value:
            return None
        if number(new) != a.value:
            vals[a.id] = new
    steps: list[str] = []
    changed: list[int] = []
    for s, text in enumerate(trace.steps):
        new_text = _render_step(trace, s, change, vals, cur)
        if new_text != text:
            changed.append(s)
        if s != change.drop:
            steps.append(new_text)
    final = trace.final
    if trace.final_src is not None and trace.final_src in vals:
        final = vals[trace.final_src]
    return Outcome(tuple(steps), final, tuple(changed), vals)


def _in_expr(new: str, text: str, start: int) -> str:
    if new.startswith("-") and text[:start].rstrip()[-1:] in (*OPS, "("):
        return f"({new})"
    return new


def _render_expr(trace: Trace, a: Ann, change: Change, cur: Callable[[Tok], str]) -> str:
    reps = _expr_reps(trace, a, change, cur)
    off, end_ = a.expr_span
    out = trace.steps[a.step][off:end_]
    for start, end, new in sorted(reps, reverse=True):
        out = out[: start - off] + new + out[end - off :]
    return out


def _expr_reps(trace: Trace, a: Ann, change: Change, cur: Callable[[Tok], str]
               ) -> list[tuple[int, int, str]]:
    text = trace.steps[a.step]
    reps = []
    for tid in a.nums:
        t = trace.toks[tid]
        c = cur(t)
        if c != t.text:
            shown = c if a.kind == "annotation" else restyle(c, t.text)
            reps.append((t.start, t.end, _in_expr(shown, text, t.start)))
    for k, op in enumerate(a.ops):
        if (a.id, k) in change.ops:
            reps.append((op.pos, op.pos + 1, change.ops[(a.id, k)]))
    return reps


def _render_step(trace: Trace, s: int, change: Change, vals: Mapping[int, str],
                 cur: Callable[[Tok], str]) -> str:
    text = trace.steps[s]
    reps: list[tuple[int, int, str]] = []
    for a in trace.anns:
        if a.step != s:
            continue
        reps.extend(_expr_reps(trace, a, change, cur))
        for k, op in enumerate(a.ops):
            if (a.id, k) in change.ops and op.visible is not None:
                pos, ch = op.visible
                reps.append((pos, pos + 1, _VISIBLE_SWAP[ch]))
        if a.id in vals:
            stated = vals[a.id] if a.kind == "annotation" else restyle(vals[a.id], a.stated)
            reps.append((*a.stated_span, stated))
    for t in trace.step_tokens(s):
        if t.role == "expr":
            continue
        new: str | None
        if t.mirror is not None:
            m = trace.toks[t.mirror]
            new = cur(m) if cur(m) != m.text else None
        else:
            new = cur(t) if cur(t) != t.text else None
        if new is not None:
            reps.append((t.start, t.end, restyle(new, t.text)))
    for start, end, new in sorted(reps, reverse=True):
        text = text[:start] + new + text[end:]
    return text
