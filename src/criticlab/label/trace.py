"""A GSM8K reference solution as a flow of numbers: what each number refers to.

Every calculator annotation ``<<expr=value>>`` *produces* its value. Every number in the
steps is read as a token: a number of an annotation's expression (``expr``), the value
shown right after an annotation (``shown``: the ``18`` of ``<<9*2=18>>18``), or any other
number of the step text (``text``). A text number right before an annotation, in the
visible expression that the annotation repeats ("9 * 2 = <<9*2=18>>18"), is *aligned*
with the annotation's number of the same value and follows it.

Which earlier result a number refers to is not written down, so it is resolved by value:
a number refers to the latest annotation before it (an earlier step, or earlier in the
same step) that produced the same value; with none, it is a constant (a quantity from the
question, or a fact such as 60 minutes). :mod:`criticlab.label.recompute` changes some
tokens, operators or results of a :class:`Trace` and recomputes everything that depends
on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from criticlab.critics.arith_parse import Expr, evaluate, interval, parse
from criticlab.critics.arith_text import normalize, tokenize

_ANN = re.compile(r"<<([^<>=]*)=([^<>=]*)>>")
_EXPR_NUM = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_NUM_BODY = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUM = re.compile(_NUM_BODY)
# a number in text; a minus glued to it is its sign unless it follows a word or ")"
_FREE_NUM = re.compile(
    rf"(?<![\w.,])(?<!\d:)(?:(?<![)\]])-)?(?:{_NUM_BODY})(?![\w]|[.,:]\d)")
_SHOWN = re.compile(rf"-?(?:{_NUM_BODY})")
_OPERAND = rf"[$(]*(?:{_NUM_BODY})%?(?:[ \t]+[A-Za-z]+){{0,2}}\)*"
_TEXT_CLAIM = re.compile(
    rf"(?<![\w.,$=)¤-])(?P<lhs>{_OPERAND}(?:(?:\s*[-+*/×÷xX−]\s*|(?=\())\s*{_OPERAND})+)"
    rf"\s*=\s*\$?(?P<rhs>-?(?:{_NUM_BODY}))(?P<pct>%)?(?!\d|[.,]\d)"
    r"(?!\s*[-+*/×÷xX−(=]\s*[\d$(.])")
# "10x6", "$2.00x 3": read the numbers around the x
_TIMES_X = re.compile(r"(?<=\d)[xX](?=\s?\d)|(?<=\d\s)[xX](?=\s?\d)")
OPS = "+-*/"
# how a visible expression writes each operator
_VISIBLE_OPS = {"+": "+", "-": "-", "−": "-", "*": "*", "x": "*", "X": "*", "×": "*",
                "·": "*", "/": "/", "÷": "/"}


@dataclass(frozen=True)
class Tok:
    """One number of a step: its span in the step text, as written, and what it refers to.
    ``src`` is the annotation whose result it is or repeats (``None``: a constant);
    ``mirror`` the expression token an aligned text token repeats."""

    id: int
    step: int
    start: int
    end: int
    text: str
    value: Fraction
    role: str  # "expr" | "shown" | "text"
    ann: int | None = None
    src: int | None = None
    mirror: int | None = None


@dataclass(frozen=True)
class Op:
    """A binary operator of an annotation's expression, between its numbers ``left`` and
    ``left + 1``; ``visible`` is the same operator in the aligned visible expression."""

    pos: int
    char: str
    left: int
    visible: tuple[int, str] | None = None


@dataclass(frozen=True)
class Ann:
    """One annotation ``<<expr=stated>>``; spans are offsets in the step text. ``exact`` is
    the expression's exact value (``None`` when it cannot be read), ``bounds`` its range
    when inputs written with 3+ decimals may be roundings."""

    id: int
    step: int
    start: int
    end: int
    expr: str
    stated: str
    value: Fraction
    exact: Fraction | None
    bounds: tuple[Fraction, Fraction] | None
    nums: tuple[int, ...]
    ops: tuple[Op, ...]
    expr_span: tuple[int, int]
    stated_span: tuple[int, int]
    shown: int | None
    aligned: str  # "order" (visible numbers in the same order), "set" (reordered), ""
    claim: bool  # the visible text right before the annotation ends with "="
    kind: str = "annotation"  # or "text": a calculation written without an annotation
    scale: int = 1  # 100 for "25/75 x 100% = 33.33%": the value is the expression's * 100

    @property
    def consistent(self) -> bool:
        """The stated value is the exact value, or its rounding to the decimals written."""
        return self.exact is not None and _holds(self.exact, self.value, self.stated)


@dataclass(frozen=True)
class Trace:
    steps: tuple[str, ...]
    anns: tuple[Ann, ...]
    toks: tuple[Tok, ...]
    final: str
    final_src: int | None

    def step_tokens(self, step: int) -> list[Tok]:
        return [t for t in self.toks if t.step == step]

    def constants(self, value: Fraction) -> list[Tok]:
        """Tokens that read ``value`` as a constant (not an earlier result)."""
        return [t for t in self.toks if t.src is None and t.role != "shown"
                and t.value == value]


def number(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def decimals(text: str) -> int:
    return len(text.partition(".")[2])


def _parse(expr: str) -> Expr | None:
    toks = [t for t in tokenize(normalize(expr)) if t.kind != "unit"]
    while toks and toks[-1].kind == "word":
        toks.pop()  # the unit of the last number: "220 employees + 20 employees"
    return parse(toks)


def evaluate_text(expr: str) -> Fraction | None:
    """Exact value of an expression read as the arithmetic critic reads it: unit words
    ("5 apples + 3 apples") and currency signs are left out."""
    e = _parse(expr)
    return None if e is None else evaluate(e)


def parse_trace(steps: tuple[str, ...], final: str) -> Trace:
    """Read the annotations and numbers of a solution and resolve what each number refers
    to (see the module docstring)."""
    anns: list[Ann] = []
    toks: list[Tok] = []
    for s, text in enumerate(steps):
        _read_step(s, text, anns, toks)
    resolved = [_resolve(t, anns, toks) for t in toks]
    final_src = None
    try:
        fv = number(final)
        final_src = next((a.id for a in reversed(anns) if a.value == fv), None)
    except (ValueError, ZeroDivisionError):
        pass
    return Trace(tuple(steps), tuple(anns), tuple(resolved), final, final_src)


def _read_step(s: int, text: str, anns: list[Ann], toks: list[Tok]) -> None:
    scan = _TIMES_X.sub(" ", text)
    masked = _ANN.sub(lambda m: "¤" * len(m.group()), text)
    events = [(m.start(), m) for m in _ANN.finditer(text)]
    events += [(m.start(), m) for m in _TEXT_CLAIM.finditer(masked)]
    taken: list[tuple[int, int]] = []  # spans of the numbers read so far
    prev_end = 0
    pending: list[Tok] = []
    for _, m in sorted(events, key=lambda e: e[0]):
        if m.start() < prev_end:
            continue
        first = len(toks) + len(pending)
        if m.re is _ANN:
            read = _read_annotation(s, text, scan, m, prev_end, len(anns), first)
        else:
            read = _read_text_claim(s, text, m, len(anns), first)
        if read is None:
            continue
        ann, new = read
        anns.append(ann)
        pending.extend(new)
        taken.extend((t.start, t.end) for t in new)
        taken.append((ann.start, ann.end))
        prev_end = max(ann.end, max((t.end for t in new), default=0))
    for n in _FREE_NUM.finditer(scan):
        a, b = n.start(), n.end()
        if any(x < b and a < y for x, y in taken):
            continue
        if text[b : b + 1] == "/" or text[a - 1 : a] == "/":
            continue  # a fraction "1/2" in words, not a quantity
        pending.append(Tok(len(toks) + len(pending), s, a, b, n.group(), number(n.group()),
                           "text"))
    toks.extend(sorted(pending, key=lambda t: t.id))


def _read_annotation(s: int, text: str, scan: str, m: re.Match[str], prev_end: int, aid: int,
                     first: int) -> tuple[Ann, list[Tok]] | None:
    expr, stated = m.group(1).strip(), m.group(2).strip()
    try:
        value = number(stated)
    except (ValueError, ZeroDivisionError):
        return None
    e0 = m.start(1) + (len(m.group(1)) - len(m.group(1).lstrip()))
    nums = _expr_tokens(s, aid, expr, e0, first)
    new = list(nums)
    seg = [(n.start(), n.end(), n.group()) for n in _FREE_NUM.finditer(scan, prev_end,
                                                                        m.start())]
    vis = seg[-len(nums):] if nums and len(seg) >= len(nums) else []
    aligned, mapping = _align(nums, vis)
    mirrors: dict[int, Tok] = {}
    for ni, (a, b, t) in mapping.items():
        tok = Tok(first + len(new), s, a, b, t, number(t), "text", aid, mirror=nums[ni].id)
        new.append(tok)
        mirrors[ni] = tok
    ops = _expr_ops(expr, e0, nums, text, mirrors if aligned == "order" else {})
    shown = None
    sm = _SHOWN.match(text, m.end())
    if sm and number(sm.group()) == value:
        shown = first + len(new)
        new.append(Tok(shown, s, sm.start(), sm.end(), sm.group(), value, "shown", aid,
                       src=aid))
    exact, bounds = _exact(expr)
    before = text[: m.start()].rstrip().rstrip("$").rstrip()
    ann = Ann(aid, s, m.start(), m.end(), expr, stated, value, exact, bounds,
              tuple(n.id for n in nums), ops, (e0, e0 + len(expr)), (m.start(2), m.end(2)),
              shown, aligned, before.endswith("="), "annotation")
    return ann, new


def _read_text_claim(s: int, text: str, m: re.Match[str], aid: int, first: int
                     ) -> tuple[Ann, list[Tok]] | None:
    """"2+2(16)=34" written without an annotation: recomputed like one when it holds."""
    lhs, stated = m.group("lhs"), m.group("rhs")
    if text[: m.start()].rstrip()[-1:] in (*OPS, "×", "÷", "−"):
        return None  # the middle of a longer expression
    exact, bounds = _exact(lhs)
    value = number(stated)
    scales = [k for k in (1, 100) if exact is not None and _holds(exact * k, value, stated)]
    if exact is None or not scales or (scales[0] == 100 and not m.group("pct")):
        return None
    scale = scales[0]
    exact = exact * scale
    bounds = None if bounds is None else (bounds[0] * scale, bounds[1] * scale)
    l0 = m.start("lhs")
    nums = [Tok(first + i, s, l0 + n.start(), l0 + n.end(), n.group(), number(n.group()),
                "expr", aid) for i, n in enumerate(_NUM.finditer(lhs))]
    ann = Ann(aid, s, m.start(), m.end(), lhs, stated, value, exact, bounds,
              tuple(n.id for n in nums), (), (l0, l0 + len(lhs)), (m.start("rhs"), m.end("rhs")),
              None, "", True, "text", scale)
    return ann, nums


def _exact(expr: str) -> tuple[Fraction | None, tuple[Fraction, Fraction] | None]:
    e = _parse(expr)
    if e is None:
        return None, None
    return evaluate(e), interval(e)


def _holds(exact: Fraction, value: Fraction, stated: str) -> bool:
    if "." in stated:
        return abs(exact - value) <= Fraction(1, 2 * 10 ** decimals(stated))
    return exact == value


def _expr_tokens(s: int, aid: int, expr: str, e0: int, first_id: int) -> list[Tok]:
    out: list[Tok] = []
    for n in _EXPR_NUM.finditer(expr):
        a, b = n.start(), n.end()
        before = expr[:a].rstrip()
        if before.endswith("-") and (before[:-1].rstrip()[-1:] in ("", "(", *OPS)):
            a = len(before) - 1  # a unary minus belongs to the number
        t = expr[a:b].replace(" ", "")
        out.append(Tok(first_id + len(out), s, e0 + a, e0 + b, t, number(t), "expr", aid))
    return out


def _align(nums: list[Tok], vis: list[tuple[int, int, str]]
           ) -> tuple[str, dict[int, tuple[int, int, str]]]:
    """Map the annotation's numbers onto the visible numbers right before it: in order, or
    as a reordering when each value is unique."""
    if not vis:
        return "", {}
    values = [number(t) for _, _, t in vis]
    if values == [n.value for n in nums]:
        return "order", dict(enumerate(vis))
    if sorted(values) == sorted(n.value for n in nums) and len(set(values)) == len(values):
        return "set", {i: vis[values.index(n.value)] for i, n in enumerate(nums)}
    return "", {}


def _expr_ops(expr: str, e0: int, nums: list[Tok], text: str, vis: Mapping[int, Tok]
              ) -> tuple[Op, ...]:
    ops: list[Op] = []
    for i, c in enumerate(expr):
        if c not in OPS:
            continue
        prev = expr[:i].rstrip()[-1:]
        if not (prev.isdigit() or prev in (".", ")")):
            continue  # unary
        left = sum(1 for n in nums if n.end <= e0 + i) - 1
        visible = None
        if left in vis and left + 1 in vis:
            a, b = vis[left].end, vis[left + 1].start
            found = [(a + j, ch) for j, ch in enumerate(text[a:b]) if ch in _VISIBLE_OPS]
            if len(found) == 1 and _VISIBLE_OPS[found[0][1]] == c:
                visible = found[0]
        ops.append(Op(e0 + i, c, left, visible))
    return tuple(ops)


def _resolve(t: Tok, anns: list[Ann], toks: list[Tok]) -> Tok:
    if t.role == "shown":
        return t
    if t.mirror is not None:
        return Tok(t.id, t.step, t.start, t.end, t.text, t.value, t.role, t.ann,
                   _resolve(toks[t.mirror], anns, toks).src, t.mirror)
    src = None
    for a in anns:
        if a.step > t.step or (a.step == t.step and a.end > t.start):
            break
        if a.value == t.value:
            src = a.id
    return Tok(t.id, t.step, t.start, t.end, t.text, t.value, t.role, t.ann, src)


def number_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the plain numbers in ``text`` ("1,200", "2.5", the 10 and 6 of "10x6"), not
    those of a fraction written with a slash ("1/2 of"), a time or a word ("2nd")."""
    scan = _TIMES_X.sub(" ", text)
    return [(m.start(), m.end()) for m in _FREE_NUM.finditer(scan)
            if text[m.end() : m.end() + 1] != "/" and text[m.start() - 1 : m.start()] != "/"]
