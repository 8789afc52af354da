"""Find arithmetic claims ("expression = value") in free text.

The text is normalised and tokenized by :mod:`criticlab.critics.arith_text`; maximal runs of
arithmetic tokens are split on "=" into equality chains, and each side is parsed by
:mod:`criticlab.critics.arith_parse`.

The extractor is deliberately timid: text it cannot read with confidence (a time "3:30", a
ratio "3:2", an ordinal "2nd", a variable "2x", "...", an unknown LaTeX command such as
``\\sqrt``) poisons the run of arithmetic it touches, and an expression that may have been cut
off by words ("price * 5 + 3 = ...") is not claimed. Judging the claims is
:mod:`criticlab.critics.arithmetic`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from criticlab.critics.arith_parse import Expr, has_operator, parse_readings, render
from criticlab.critics.arith_text import (
    LABELS,
    LEFT_LINK_WORDS,
    MULTIPLIERS,
    NOT_UNITS,
    RIGHT_LINK_WORDS,
    Tok,
    normalize,
    tokenize,
    word_set,
)

# -- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One side of a claim: the parsed expression, its rendering, and the unit words that
    were dropped from it."""

    expr: Expr
    text: str
    units: frozenset[str] = frozenset()
    alternative: Expr | None = None  # the other reading of "500/ 1/10", if it differs


@dataclass(frozen=True)
class Claim:
    """``left relation right`` where both sides parsed; ``relation`` is "=" or "≈".
    ``then_number`` is true when the right side's number is followed within two words by
    another number ("3 hours 20 minutes"): the value is a compound quantity."""

    left: Side
    relation: str
    right: Side
    then_number: bool = False
    source: str = "text"  # or "annotation": a GSM8K <<expr=value>>

    @property
    def text(self) -> str:
        return f"{self.left.text} {self.relation} {self.right.text}"


_MAX_TOKENS = 200  # longer "expressions" are not written by people; it also bounds recursion


def _segments(run: list[Tok]) -> tuple[list[list[Tok]], list[str]]:
    segs: list[list[Tok]] = [[]]
    rels: list[str] = []
    for t in run:
        if t.kind in ("eq", "approx"):
            rel = "≈" if t.kind == "approx" or (rels and not segs[-1] and rels[-1] == "≈") else "="
            if segs[-1] == [] and rels:  # "= ≈" or "= =": merge
                rels[-1] = "≈" if "≈" in (rel, rels[-1]) else "="
                continue
            rels.append(rel)
            segs.append([])
        else:
            segs[-1].append(t)
    return segs, rels


def _strip_parens(seg: list[Tok], first: bool, last: bool) -> list[Tok] | None:
    """Drop the unmatched parentheses that open a run ("(5 + 3 = 8)") or close it; ``None``
    when the segment is the inside of a larger group: "(41^2, 41 * 43) = 41", "= (4, 7.5)".

    Linear in the segment: the depths are summed once (``g[k]`` after ``seg[:k]``), and the
    kept part ``seg[lo:hi]`` only shrinks, so its lowest depth comes from :class:`_ShrinkingMin`
    instead of a new pass per parenthesis dropped."""
    g = [0]
    for t in seg:
        g.append(g[-1] + (t.kind == "lp") - (t.kind == "rp"))
    lo, hi = 0, len(seg)
    lowest_g = _ShrinkingMin(g)
    while lo < hi:
        depth, lowest = g[hi] - g[lo], lowest_g(lo, hi) - g[lo]
        if lowest == 0 and depth == 0:
            return seg[lo:hi]
        if last and lowest < 0 and seg[hi - 1].kind == "rp":
            hi -= 1
        elif first and depth > lowest and seg[lo].kind == "lp":
            lo += 1
        else:
            return None
    return []


class _ShrinkingMin:
    """``min(values[lo : hi + 1])`` for a window that only shrinks, in amortised constant time:
    minima are kept from a pivot in the middle of the window out to each end, and rebuilt
    around a new pivot when an end passes it (after at least half the window was dropped)."""

    def __init__(self, values: list[int]) -> None:
        self.values = values
        self.pivot = -1
        self.left: list[int] = []  # left[k]: min(values[pivot - k : pivot + 1])
        self.right: list[int] = []  # right[k]: min(values[pivot : pivot + k + 1])

    def __call__(self, lo: int, hi: int) -> int:
        if not lo <= self.pivot <= hi:
            self.pivot = p = (lo + hi) // 2
            self.left, self.right = [self.values[p]], [self.values[p]]
            for k in range(p - 1, lo - 1, -1):
                self.left.append(min(self.left[-1], self.values[k]))
            for k in range(p + 1, hi + 1):
                self.right.append(min(self.right[-1], self.values[k]))
        return min(self.left[self.pivot - lo], self.right[hi - self.pivot])


_ARITH_KINDS = frozenset(("num", "pct", "op", "lp", "rp", "eq", "approx", "unit"))


def _runs(toks: list[Tok]) -> list[tuple[int, int]]:
    """Maximal [start, end) spans of arithmetic tokens; a newline continues a run only when an
    equation goes on across it ("x = 3 + 4 \\n = 7")."""
    spans: list[tuple[int, int]] = []
    arith = _ARITH_KINDS
    i = 0
    n = len(toks)
    while i < n:
        if toks[i].kind not in arith:
            i += 1
            continue
        j = i
        while j < n:
            if toks[j].kind in arith:
                j += 1
            elif toks[j].kind == "nl":
                k = j
                while k < n and toks[k].kind == "nl":
                    k += 1
                if k < n and (toks[k].kind in ("eq", "approx") or toks[j - 1].kind in (
                    "eq", "approx")):
                    j = k
                else:
                    break
            else:
                break
        spans.append((i, j))
        i = j
    return spans


def extract_claims(text: str) -> list[Claim]:
    """Every "expression = value" claim in ``text`` that the extractor can read with
    confidence, in order. The left side always contains an operator ("1 hour = 60 minutes"
    is not a claim). GSM8K calculator annotations ``<<expr=value>>`` are included."""
    if _RELATION.search(text) is None:
        return []  # no "=" or "≈" (nor what normalize turns into one): no claim
    claims: list[Claim] = []
    if "<<" in text:
        for m in _ANNOTATION.finditer(text):
            for c in _claims_in(m.group(1)):
                claims.append(Claim(c.left, c.relation, c.right, c.then_number, "annotation"))
        text = _ANNOTATION_ALL.sub(" ", text)
    claims.extend(_claims_in(text))
    return claims


_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_ANNOTATION_ALL = re.compile(r"<<[^<>]*>>")
# every character or LaTeX command that normalize() turns into "=" or "≈" (the only relations
# a claim has): a text with none of them has no claim, and is not normalised or tokenized
_RELATION = re.compile(r"[=≈＝≃≒~]|\\(?:approx|sim|thickapprox|doteq)")


def _claims_in(text: str) -> list[Claim]:
    toks = tokenize(normalize(text))
    claims: list[Claim] = []
    last: tuple[tuple[str, ...], Side, int] | None = None  # the latest "name = expression"
    for a, b in _runs(toks):
        run = [t for t in toks[a:b] if t.kind != "nl"]
        segs, rels = _segments(run)
        if not rels:
            last = None
            continue
        sides = [_side(seg, k, len(segs), toks, a, b) for k, seg in enumerate(segs)]
        # a poisoned neighbour ("3:30 + 2", "4x - 13 = ...") spoils only the side it touches
        if a > 0 and toks[a - 1].kind == "poison":
            sides[0] = None
        if b < len(toks) and toks[b].kind == "poison":
            sides[-1] = None
        for k, rel in enumerate(rels):
            left, right = sides[k], sides[k + 1]
            if left is None or right is None or not has_operator(left.expr):
                continue
            then_number = k + 1 == len(rels) and _number_follows(toks, b)
            claims.append(Claim(left, rel, right, then_number))
        name = _name_before(toks, a) if not segs[0] else ()
        # "Total = 20 + 23. Total = 43": one equation written over two statements; only an
        # unevaluated right side links, and only to a plain number
        nxt = sides[1]
        if name and last is not None and last[0] == name and nxt is not None and (
            not has_operator(nxt.expr) and _only_glue(toks[last[2] : a - len(name)])
        ):
            claims.append(Claim(last[1], rels[0], nxt, len(rels) == 1 and _number_follows(toks, b)))
        end = sides[-1]
        last = None
        if name and len(sides) == 2 and end is not None and has_operator(end.expr):
            last = (name, end, b)
    return claims


def _side(seg: list[Tok], k: int, n: int, toks: list[Tok], a: int, b: int) -> Side | None:
    units = frozenset(t.text.lower() for t in seg if t.kind == "unit")
    body = _strip_parens([t for t in seg if t.kind != "unit"], k == 0, k == n - 1)
    if not body or len(body) > _MAX_TOKENS:
        return None
    if k == 0 and _cut_on_left(body, toks, a):
        return None
    if k == n - 1:
        if _cut_on_right(body, toks, b):
            return None
        units |= _trailing_words(toks, b)
    e, alt = parse_readings(body)
    if e is None and k == n - 1:
        # "= 0.20 (20 cents)": a parenthesised restatement after the value
        for i in range(1, len(body)):
            if body[i].kind == "lp" and not body[i].glued and body[i - 1].kind in ("num", "pct"):
                body = body[:i]
                e, alt = parse_readings(body)
                break
    if e is None:
        return None
    return Side(e, render(e), units, alt)


_CONNECTIVES = word_set(
    "so thus therefore hence then now and which gives we get this simplifies to simplify "
    "simplifying finally"
)


def _name_before(toks: list[Tok], a: int) -> tuple[str, ...]:
    """The words naming the left side of "Total cost = ...", without leading connectives."""
    k = a
    while k > 0 and a - k < 8 and toks[k - 1].kind == "word":
        k -= 1
    words = [t.text.lower() for t in toks[k:a]]
    while words and words[0] in _CONNECTIVES:
        words.pop(0)
    return tuple(words)


def _only_glue(between: list[Tok]) -> bool:
    """Only punctuation, line breaks, connectives and at most one other word (a unit)."""
    others = 0
    for t in between:
        if t.kind in ("punct", "nl"):
            continue
        if t.kind != "word":
            return False
        if t.text.lower() not in _CONNECTIVES:
            others += 1
    return others <= 1


def _cut_on_left(body: list[Tok], toks: list[Tok], a: int) -> bool:
    first = body[0]
    if first.kind == "op" and not (first.text == "-" and body[1:2] and body[1].glued
                                   and body[1].kind == "num"):
        return True
    if first.kind == "pct":
        return True
    before = toks[a - 1] if a > 0 else None
    prev = toks[a - 2] if a >= 2 else None
    # ".8 + . 84" and "14, 400": a typo inside a number or an expression
    if before is not None and before.kind == "punct" and prev is not None and (
        (prev.kind == "op" and before.text == ".")
        or (before.text == "," and prev.kind == "num" and first.kind == "num"
            and len(first.text) == 3)
    ):
        return True
    if before is None or before.kind != "word":
        return False
    word = before.text.lower()
    if word in LEFT_LINK_WORDS or word in LABELS:
        return True
    k = a - 1
    while k > 0 and a - k < 4 and toks[k].kind == "word":
        k -= 1
    if toks[k].kind == "op":
        return True  # "25 classmates + his 1 teacher + 1 himself = 27"
    if prev is not None and (
        (word == "of" and (prev.kind in ("num", "pct") or prev.text.lower() in MULTIPLIERS))
        or (word == "by" and prev.text.lower().startswith(("divid", "multipl")))
    ):
        return True  # "half of 10 + 5", "divided by 2 + 3": the words are an operand
    # "3 hours 30 minutes + ...": the run continues a compound quantity
    return prev is not None and prev.kind == "num" and word not in NOT_UNITS


def _cut_on_right(body: list[Tok], toks: list[Tok], b: int) -> bool:
    last = body[-1]
    if last.kind == "op":
        return True
    after = toks[b] if b < len(toks) else None
    return after is not None and after.kind == "word" and after.text.lower() in RIGHT_LINK_WORDS


def _trailing_words(toks: list[Tok], b: int) -> frozenset[str]:
    words = []
    for t in toks[b : b + 2]:
        if t.kind != "word" or t.text.lower() in NOT_UNITS:
            break
        words.append(t.text.lower())
    return frozenset(words)


def _number_follows(toks: list[Tok], b: int) -> bool:
    k = b
    words = 0
    while k < len(toks) and toks[k].kind == "word" and words < 3:
        k += 1
        words += 1
    return words > 0 and k < len(toks) and toks[k].kind in ("num", "lp")
