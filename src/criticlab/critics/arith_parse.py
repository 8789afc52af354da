"""Parse arithmetic tokens into an expression tree and evaluate it exactly.

Tokens come from :func:`criticlab.critics.arith_text.tokenize`. A small recursive-descent
parser builds an AST evaluated with :class:`fractions.Fraction`; Python's ``eval`` is never
used. Claims ("expression = value") are found by :mod:`criticlab.critics.arith_claims`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from criticlab.critics.arith_text import Tok

# -- expressions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: Fraction
    decimals: int
    text: str


@dataclass(frozen=True)
class Neg:
    arg: Expr


@dataclass(frozen=True)
class Pct:
    arg: Expr


@dataclass(frozen=True)
class Bin:
    op: str
    left: Expr
    right: Expr


Expr = Num | Neg | Pct | Bin

_MAX_BITS = 4096


class _Parser:
    """expr := term (("+"|"-") term)* ; term := unary (("*"|"/"|"of") unary)* ;
    unary := "-" unary | "+" unary | power ; power := postfix ("^" unary)? ;
    postfix := atom "%"* ; atom := NUM | "(" expr ")"."""

    __slots__ = ("fractions", "glued_fraction_read", "i", "n", "toks")

    def __init__(self, toks: list[Tok], fractions: bool) -> None:
        self.toks = toks
        self.n = len(toks)
        self.i = 0
        self.fractions = fractions
        self.glued_fraction_read = False  # whether a tight "3/4" was read as one number

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < self.n else None

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expr(self) -> Expr:
        left = self.term()
        toks, n = self.toks, self.n
        while self.i < n and (t := toks[self.i]).kind == "op" and t.text in "+-":
            self.i += 1
            left = Bin(t.text, left, self.term())
        return left

    def term(self) -> Expr:
        left = self.unary()
        toks, n = self.toks, self.n
        while self.i < n and (t := toks[self.i]).kind == "op" and t.text in ("*", "/", "of"):
            self.i += 1
            if t.text == "/" and self.fractions and self._glued_fraction(t):
                a, _, b = self.take(), self.take(), self.take()
                assert a.value is not None and b.value is not None
                left = Bin("/", left, Bin("/", Num(a.value, 0, a.text), Num(b.value, 0, b.text)))
                self.glued_fraction_read = True
                continue
            left = Bin(t.text, left, self.unary())
        return left

    def _glued_fraction(self, slash: Tok) -> bool:
        """"60 / 3/4" and "50/ 1/2" divide by a fraction: the tight "3/4" binds first."""
        nxt = self.toks[self.i : self.i + 4]
        if len(nxt) < 3 or (slash.glued and nxt[0].glued):
            return False
        a, op, b = nxt[:3]
        return (a.kind == "num" and op.text == "/" and op.glued and b.kind == "num" and b.glued
                and a.decimals == 0 and b.decimals == 0
                and not (len(nxt) > 3 and nxt[3].kind in ("op", "pct") and nxt[3].text == "^"))

    def unary(self) -> Expr:
        i = self.i
        t = self.toks[i] if i < self.n else None
        if t is not None and t.kind == "op" and t.text in "+-":
            nxt = self.toks[i + 1] if i + 1 < self.n else None
            # after an operator only a minus glued to a number: "5 * -3", not "1 *+1"
            if i > 0 and (t.text == "+" or nxt is None or not nxt.glued):
                raise ValueError("operator after operator")
            self.i = i + 1
            arg = self.unary()
            return Neg(arg) if t.text == "-" else arg
        return self.power()

    def power(self) -> Expr:
        base = self.postfix()
        i = self.i
        if i < self.n and (t := self.toks[i]).kind == "op" and t.text == "^":
            self.i = i + 1
            return Bin("^", base, self.unary())
        return base

    def postfix(self) -> Expr:
        e = self.atom()
        toks, n = self.toks, self.n
        while self.i < n and toks[self.i].kind == "pct":
            self.i += 1
            e = Pct(e)
        return e

    def atom(self) -> Expr:
        i = self.i
        if i >= self.n:
            raise ValueError("unexpected end")
        t = self.toks[i]
        self.i = i + 1
        if t.kind == "num" and t.value is not None:
            return Num(t.value, t.decimals, t.text)
        if t.kind == "lp":
            e = self.expr()
            if self.i >= self.n or self.toks[self.i].kind != "rp":
                raise ValueError("unbalanced parenthesis")
            self.i += 1
            return e
        raise ValueError(f"unexpected {t.text!r}")


def parse(toks: list[Tok], fractions: bool = True) -> Expr | None:
    """Parse a whole token list as one expression, or ``None``. With ``fractions`` a tight
    "3/4" after a spaced division is one number ("60 / 3/4" = 80), else "/" is plainly
    left-associative (60 / 3 / 4 = 5)."""
    return _parse(toks, fractions)[0]


def parse_readings(toks: list[Tok]) -> tuple[Expr | None, Expr | None]:
    """``parse(toks)`` and, where it differs, ``parse(toks, fractions=False)`` (else ``None``).
    The second parse is run only when the first read a tight fraction: otherwise both took the
    same steps and are equal."""
    e, glued = _parse(toks, True)
    if e is None or not glued:
        return e, None
    alt = _parse(toks, False)[0]
    return e, None if alt == e else alt


def _parse(toks: list[Tok], fractions: bool) -> tuple[Expr | None, bool]:
    if not toks:
        return None, False
    p = _Parser(toks, fractions)
    try:
        e = p.expr()
    except (ValueError, RecursionError):
        return None, False
    return (e if p.i == len(toks) else None), p.glued_fraction_read


def evaluate(e: Expr, percent: bool = True) -> Fraction | None:
    """Exact value of ``e``; ``percent=False`` reads "20%" as 20 (the other way people write
    percent arithmetic). ``None`` for division by zero, a non-integer or huge power."""
    try:
        return _eval(e, percent)
    except (ZeroDivisionError, OverflowError, ValueError):
        return None


def _eval(e: Expr, percent: bool) -> Fraction:
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Neg):
        return -_eval(e.arg, percent)
    if isinstance(e, Pct):
        v = _eval(e.arg, percent)
        return v / 100 if percent else v
    a, b = _eval(e.left, percent), _eval(e.right, percent)
    if e.op == "+":
        r = a + b
    elif e.op == "-":
        r = a - b
    elif e.op in ("*", "of"):
        r = a * b
    elif e.op == "/":
        r = a / b
    else:
        if b.denominator != 1 or (a == 0 and b < 0):
            raise ValueError("unsupported power")
        if abs(a) not in (0, 1) and abs(b) * _bits(a) > 2 * _MAX_BITS:
            raise OverflowError("too large")
        r = a ** int(b)
    if r.numerator.bit_length() > _MAX_BITS or r.denominator.bit_length() > _MAX_BITS:
        raise OverflowError("too large")
    return r


def interval(e: Expr, percent: bool = True, rounded_from: int = 3
             ) -> tuple[Fraction, Fraction] | None:
    """Bounds of ``e`` when every number written with at least ``rounded_from`` decimals may
    itself be a rounding ("2.8284^2 = 8"); ``None`` where the bounds are not defined."""
    try:
        return _interval(e, percent, rounded_from)
    except (ZeroDivisionError, OverflowError, ValueError):
        return None


def _interval(e: Expr, percent: bool, rf: int) -> tuple[Fraction, Fraction]:
    if isinstance(e, Num):
        if e.decimals < rf:
            return e.value, e.value  # exact as written
        h = Fraction(1, 2 * 10**e.decimals)
        return e.value - h, e.value + h
    if isinstance(e, Neg):
        lo, hi = _interval(e.arg, percent, rf)
        return -hi, -lo
    if isinstance(e, Pct):
        lo, hi = _interval(e.arg, percent, rf)
        return (lo / 100, hi / 100) if percent else (lo, hi)
    a, b = _interval(e.left, percent, rf)
    c, d = _interval(e.right, percent, rf)
    if e.op == "+":
        return a + c, b + d
    if e.op == "-":
        return a - d, b - c
    if e.op == "/":
        if c <= 0 <= d:
            raise ZeroDivisionError
        c, d = 1 / d, 1 / c
    if e.op in ("*", "of", "/"):
        ps = (a * c, a * d, b * c, b * d)
        return min(ps), max(ps)
    if c != d or c.denominator != 1:
        raise ValueError("unsupported power")
    n = int(c)
    if abs(n) * max(_bits(a), _bits(b)) > 2 * _MAX_BITS:
        raise OverflowError("too large")
    if n < 0 and a <= 0 <= b:
        raise ZeroDivisionError
    ends = (a**n, b**n)
    lo, hi = min(ends), max(ends)
    if n % 2 == 0 and n > 0 and a <= 0 <= b:
        lo = Fraction(0)
    return lo, hi


def _bits(x: Fraction) -> int:
    return max(x.numerator.bit_length(), x.denominator.bit_length())


def has_operator(e: Expr) -> bool:
    return isinstance(e, Bin | Pct) or (isinstance(e, Neg) and has_operator(e.arg))


def has_percent(e: Expr) -> bool:
    if isinstance(e, Pct):
        return True
    if isinstance(e, Neg):
        return has_percent(e.arg)
    if isinstance(e, Bin):
        return has_percent(e.left) or has_percent(e.right)
    return False


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "of": 2, "^": 4}


def render(e: Expr, outer: int = 0, right: bool = False) -> str:
    """Write an expression with the parentheses it needs: "165 * (6 / 11)", "20% of 50"."""
    if isinstance(e, Num):
        return e.text
    if isinstance(e, Neg):
        s, prec = "-" + render(e.arg, 3), 3
    elif isinstance(e, Pct):
        s, prec = render(e.arg, 5) + "%", 5
    else:
        prec = _PREC[e.op]
        s = f"{render(e.left, prec)} {e.op} {render(e.right, prec, True)}"
    need = prec < outer or (prec == outer and right != (prec == 4))
    return f"({s})" if need else s
