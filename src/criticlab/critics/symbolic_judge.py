"""The judge of one claim, run inside the symbolic verifier's worker process (this module
imports SymPy and latex2sympy lazily; :mod:`criticlab.critics.symbolic` never imports it in the
parent). See :mod:`criticlab.critics.symbolic` for what is decided and how."""

from __future__ import annotations

from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from criticlab.critics.symbolic_claims import Claim
from criticlab.critics.symbolic_parse import parse as _parse

__all__ = ["ClaimResult", "judge", "serve"]


@dataclass(frozen=True)
class ClaimResult:
    """``ok``: True (holds), False (certainly wrong) or None (undecided), with why."""

    claim: Claim
    ok: bool | None
    message: str


def _show(v: Any) -> str:
    import sympy

    if isinstance(v, sympy.Rational):
        if v.q == 1 or len(str(v)) <= 12:
            return str(v)
        return f"{v} (≈ {sympy.N(v, 6)})"
    if isinstance(v, sympy.Number):
        return str(sympy.N(v, 6))
    exact = str(v)
    if len(exact) <= 20:
        return f"{exact} (≈ {sympy.N(v, 6)})"
    return f"≈ {sympy.N(v, 6)}"


def _number(v: Any) -> Any:
    """A SymPy number (exact when it is rational), or ``None`` for something that is not a
    finite complex number."""
    import sympy

    if isinstance(v, sympy.Rational):
        return v
    n = sympy.N(v, 30)
    if not n.is_number or n.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    return n


def _written(v: Any, decimals: int) -> bool:
    """Whether ``v`` is exactly a decimal with at most ``decimals`` places."""
    import sympy

    return isinstance(v, sympy.Rational) and (v * 10**decimals).q == 1


def _constants(claim: Claim, a: Any, b: Any) -> bool | None:
    """True/False/None for a claim between two constants. An equality whose sides differ by
    at most one unit of the last decimal written holds (a rounding or truncation)."""
    import sympy

    x, y = _number(a), _number(b)
    if x is None or y is None:
        return None
    d = x - y
    scale = max(1, abs(x), abs(y))
    if claim.rel in ("=", "!="):
        size = abs(d)
        if d == 0:
            same = True
        elif claim.decimals is not None and not (_written(x, claim.decimals)
                                                 and _written(y, claim.decimals)):
            # a rounding: one unit of the last decimal written, or 0.5% (rounded inputs,
            # "(2.8284)^2 = 8")
            same = bool(size <= max(sympy.Rational(1, 10**claim.decimals),
                                    sympy.Rational(1, 200) * scale))
        elif claim.decimals is not None:
            same = False  # "1.4 = 1.5": both sides are exact decimals
        elif isinstance(d, sympy.Rational):
            same = False
        elif size <= sympy.Float("1e-20") * scale:
            same = True  # exact irrationals, equal up to evaluation noise
        elif size > sympy.Float("1e-10") * scale:
            same = False
        else:
            return None
        return same if claim.rel == "=" else not same
    if not (x.is_real and y.is_real) or (not isinstance(d, sympy.Rational)
                                         and abs(d) < sympy.Float("1e-20") * scale):
        return None  # complex numbers have no order; a tie within noise is undecided
    return bool({"<": d < 0, ">": d > 0, "<=": d <= 0, ">=": d >= 0}[claim.rel])


def _rational_in(e: Any, syms: set[Any]) -> bool:
    try:
        return bool(e.is_rational_function(*syms))
    except (TypeError, ValueError, AttributeError):
        return False


_POINTS = (2, 3, 5, 7, "7/3", "11/5")


def _identity(claim: Claim, a: Any, b: Any) -> ClaimResult:
    import sympy

    syms = sorted(a.free_symbols | b.free_symbols, key=str)
    if a.free_symbols != b.free_symbols or len(syms) > 4:
        return ClaimResult(claim, None, f'"{claim.text}": the sides have other variables')
    if not (_rational_in(a, set(syms)) and _rational_in(b, set(syms))):
        return ClaimResult(claim, None, f'"{claim.text}": not a rational function, not checked')
    held = 0
    for k in range(len(_POINTS)):
        point = {s: sympy.Rational(_POINTS[(k + i) % len(_POINTS)]) for i, s in enumerate(syms)}
        x, y = _number(a.subs(point)), _number(b.subs(point))
        if x is None or y is None:
            continue
        exact = isinstance(x, sympy.Rational) and isinstance(y, sympy.Rational)
        close = abs(x - y) <= (sympy.Rational(1, 10**claim.decimals) if claim.decimals
                               is not None else sympy.Float("1e-20") * max(1, abs(x), abs(y)))
        if x == y or close:
            held += 1
            continue
        if not exact and claim.decimals is None and abs(x - y) <= sympy.Float("1e-10") * max(
                1, abs(x), abs(y)):
            return ClaimResult(claim, None, f'"{claim.text}": undecided within rounding noise')
        at = ", ".join(f"{s} = {v}" for s, v in point.items())
        return ClaimResult(claim, False, f'"{claim.text}" is not an identity: at {at} the left '
                           f"side is {_show(x)}, the right side {_show(y)}")
    if held >= 3:
        return ClaimResult(claim, True, "")
    return ClaimResult(claim, None, f'"{claim.text}": undefined at the test points')


def _equation_parts(text: str) -> tuple[Any, Any]:
    left, right = text.split(" = ", 1)
    return _parse(left), _parse(right)


def _implies(claim: Claim) -> ClaimResult:
    """``P => Q``; with ``claim.premises`` (``x = 3`` after several equations in ``x``), wrong
    only when it solves none of them."""
    if not claim.premises:
        return _implies_one(claim)
    results = [_implies_one(replace(claim, left=p, premises=())) for p in claim.premises]
    if any(r.ok for r in results):
        return ClaimResult(claim, True, "")
    if all(r.ok is False for r in results):
        return replace(results[-1], claim=claim)
    return ClaimResult(claim, None, f'"{claim.text}": not decided for every earlier equation')


def _same(x: Any, y: Any) -> bool | None:
    """Exact equality of two numbers, or up to evaluation noise for irrational ones."""
    import sympy

    if isinstance(x, sympy.Rational) and isinstance(y, sympy.Rational):
        return bool(x == y)
    size, scale = abs(x - y), max(1, abs(x), abs(y))
    if size <= sympy.Float("1e-20") * scale:
        return True
    return False if size > sympy.Float("1e-10") * scale else None


def _implies_one(claim: Claim) -> ClaimResult:
    import sympy

    pl, pr = _equation_parts(claim.left)
    ql, qr = _equation_parts(claim.right)
    p, q = pl - pr, ql - qr
    syms = p.free_symbols | q.free_symbols
    unknown = ClaimResult(claim, None, f'"{claim.text}": not a one-variable implication')
    if len(syms) != 1 or p.free_symbols != syms or q.free_symbols != syms:
        return unknown
    (x,) = syms
    if not (_rational_in(p, syms) and _rational_in(q, syms)):
        return unknown
    for lin, other, other_l, other_r, which in ((q, p, pl, pr, claim.left),
                                                (p, q, ql, qr, claim.right)):
        num = sympy.numer(sympy.together(lin))
        try:
            poly = sympy.Poly(num, x)
        except sympy.PolynomialError:
            continue
        if poly.degree() != 1:
            continue
        root = sympy.solve(num, x)
        if len(root) != 1:
            continue
        r = root[0]
        if sympy.denom(sympy.together(other)).subs(x, r) == 0:
            return unknown
        lv, rv = _number(other_l.subs(x, r)), _number(other_r.subs(x, r))
        if lv is None or rv is None:
            return unknown
        same = _same(lv, rv)
        if same:
            return ClaimResult(claim, True, "")
        if same is None or claim.decimals is not None:
            return unknown
        if which == claim.right:
            return ClaimResult(claim, False, f'"{claim.text}" is wrong: "{claim.left}" has the '
                               f'only solution {x} = {_show(r)}, where "{claim.right}" gives '
                               f"{_show(lv)} ≠ {_show(rv)}")
        return ClaimResult(claim, False, f'"{claim.text}" is wrong: {x} = {_show(r)} does not '
                           f'satisfy "{claim.left}": the left side is {_show(lv)}, the right '
                           f"side {_show(rv)}")
    return unknown


def judge(claim: Claim) -> ClaimResult:
    """The verdict on one claim (in the calling process: the worker calls it)."""
    try:
        if claim.kind == "implies":
            return _implies(claim)
        condition = ClaimResult(claim, None, f'"{claim.text}": an equation or a condition, '
                                "not an identity")
        a = _parse(claim.left)
        if a.free_symbols and (claim.rel != "=" or not claim.identity):
            return condition  # decided without reading the other side
        b = _parse(claim.right)
        if not a.free_symbols and not b.free_symbols:
            ok = _constants(claim, a, b)
            if ok is False and claim.percent:
                ok = _percent_other_reading(claim)
            if ok is None:
                return ClaimResult(claim, None, f'"{claim.text}": cannot evaluate')
            if ok:
                return ClaimResult(claim, True, "")
            if claim.rel not in ("=", "!="):
                return ClaimResult(claim, False, f'"{claim.text}" is wrong: the left side is '
                                   f"{_show(a)}, the right side {_show(b)}")
            return ClaimResult(claim, False, f'"{claim.text}" is wrong: {claim.left} = '
                               f"{_show(a)}" + ("" if b.is_Number else
                                                f", {claim.right} = {_show(b)}"))
        if claim.rel != "=" or not claim.identity:
            return condition
        return _identity(claim, a, b)
    except Exception as e:  # any failure of the parser or SymPy is "unknown"
        return ClaimResult(claim, None, f'"{claim.text}": not checked ({type(e).__name__})')


def _percent_other_reading(claim: Claim) -> bool | None:
    """"\\frac{1}{4} \\times 100 = 25\\%": "%" dropped, the claim may hold."""
    other = Claim(claim.left.replace("\\%", ""), claim.rel, claim.right.replace("\\%", ""),
                  decimals=claim.decimals)
    a, b = _parse(other.left), _parse(other.right)
    return _constants(other, a, b)


class _Late(BaseException):
    """Raised in the worker when a claim's CPU time is up (not an ``Exception``: ``judge``
    must not turn it into an ordinary "not checked")."""


_ARMED = [False]  # whether a claim is being judged: a late signal after it is ignored


def _late(signum: int, frame: Any) -> None:
    if _ARMED[0]:
        _ARMED[0] = False
        raise _Late


def _judge_within(claim: Claim, seconds: float) -> ClaimResult | None:
    """``judge(claim)``, or ``None`` when it used more than ``seconds`` of CPU time."""
    import signal

    from sympy.core.cache import clear_cache

    try:
        try:
            _ARMED[0] = True
            signal.setitimer(signal.ITIMER_PROF, seconds)
            return judge(claim)
        finally:
            _ARMED[0] = False
            signal.setitimer(signal.ITIMER_PROF, 0)
    except _Late:
        clear_cache()  # what SymPy cached halfway through is dropped
        return None


def serve(conn: Connection) -> None:
    """The worker's loop: receive ``(claim, seconds)``, send back its ClaimResult, or ``None``
    when the claim used more than ``seconds`` of CPU time. The limit is a CPU-time timer
    (``SIGPROF``), so a verdict does not depend on how busy the machine is, and the worker
    survives it with its caches (the parser's DFA above all) intact; only a computation that
    Python cannot interrupt (inside GMP) outlives it, and the parent kills the worker then.
    Where there is no ``setitimer`` (Windows) the parent's wall-clock limit is the only one."""
    import signal

    from latex2sympy2_extended import latex2sympy  # noqa: F401 - paid once, at start

    timed = hasattr(signal, "setitimer")
    if timed:
        signal.signal(signal.SIGPROF, _late)
    conn.send("ready")
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        claim, seconds = message
        conn.send(_judge_within(claim, seconds) if timed else judge(claim))
