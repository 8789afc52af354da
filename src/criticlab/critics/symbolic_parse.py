"""LaTeX to SymPy for the symbolic verifier, in its worker process: math-verify's
``latex2sympy`` (latex2sympy2_extended), made several times faster without changing what it
returns.

latex2sympy parses with ANTLR's Python runtime in its full LL prediction mode, which is what
costs: most of the verifier's time went into parsing. :func:`latex_to_sympy` uses ANTLR's
two-stage strategy instead:

1. **SLL first.** The same generated parser with SLL prediction (fast, its decisions cached
   in ANTLR's DFA) and an error strategy that gives up at the first syntax error. Where SLL
   parses an input without error it gives the tree full LL gives (an SLL conflict is resolved
   by the lowest alternative; on this grammar that agrees with LL except at a few decisions,
   below).
2. **Full LL where SLL gives up**: the library's own parse (its error listener, LL
   prediction), so a real syntax error fails as it always did.
3. **Learned decisions.** During a full LL parse, a decision where full-context prediction
   chose another alternative than SLL would have (in latex2sympy's grammar: whether ``x^2``
   continues with a subscript) is remembered, and later SLL parses predict that decision with
   full LL. After the first few such inputs, ``x^2 - 2x`` parses in the fast stage too.

Numbers written with digits only become ``sympy.Integer`` directly (what ``sympy.Number``
returns for them, without going through SymPy's string parser). A test compares this with
``latex2sympy`` on every claim side of ProcessBench GSM8K and MATH: the expressions are the
same (``repr``). If a future latex2sympy2_extended lacks the internals used here, the
library's own parse is used for everything.
"""

from __future__ import annotations

from typing import Any

__all__ = ["latex_to_sympy", "parse"]

_PARSE_CACHE: dict[str, Any] = {}
_CONVERTER: list[Any] = []  # [converter or None], built on first use


def _config() -> Any:
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig

    return ConversionConfig(interpret_as_mixed_fractions=True,
                            interpret_simple_eq_as_assignment=False,
                            interpret_contains_as_eq=False, lowercase_symbols=False)


def _converter() -> Any:
    """The two-stage converter, or ``None`` when latex2sympy2_extended or the ANTLR runtime
    lack what it relies on."""
    try:
        import sympy
        from antlr4.atn.ParserATNSimulator import ParserATNSimulator
        from antlr4.atn.PredictionMode import PredictionMode
        from antlr4.error.ErrorStrategy import BailErrorStrategy
        from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy
    except ImportError:
        return None

    learned: set[int] = set()  # decisions SLL must not predict alone

    class Simulator(ParserATNSimulator):
        full = False  # this parse is the full LL one

        def adaptivePredict(self, input: Any, decision: int, outer: Any) -> int:
            self.predictionMode = (PredictionMode.LL if self.full or decision in learned
                                   else PredictionMode.SLL)
            return int(super().adaptivePredict(input, decision, outer))

        def execATNWithFullContext(self, dfa: Any, D: Any, s0: Any, input: Any,
                                   start: int, outer: Any) -> int:
            alt = int(super().execATNWithFullContext(dfa, D, s0, input, start, outer))
            conflicting = D.configs.conflictingAlts
            if conflicting and alt != min(conflicting):
                learned.add(dfa.decision)  # SLL would have taken min(conflicting)
            return alt

    class Converter(_Latex2Sympy):
        full = False

        def create_parser(self, latex_str: str) -> Any:
            parser = super().create_parser(latex_str)
            old = parser._interp
            sim = Simulator(parser, parser.atn, old.decisionToDFA, old.sharedContextCache)
            sim.full = self.full
            parser._interp = sim
            if not self.full:  # stage 1: give up at the first syntax error
                parser.removeErrorListeners()
                parser._errHandler = BailErrorStrategy()
            return parser

        def parse_number(self, text: str) -> Any:
            digits = text.replace(",", "")
            if digits.isascii() and digits.isdigit():
                return sympy.Integer(int(digits))  # what sympy.Number(digits) gives
            return super().parse_number(text)

    try:
        return Converter(config=_config())
    except TypeError:  # another constructor
        return None


def latex_to_sympy(text: str) -> Any:
    """What ``latex2sympy(text)`` returns (with the verifier's conversion settings), parsed in
    two stages (see the module docstring); raises where it raises."""
    from latex2sympy2_extended import latex2sympy
    from latex2sympy2_extended.latex2sympy2 import NormalizationConfig, normalize_latex

    if not _CONVERTER:
        _CONVERTER.append(_converter())
    conv = _CONVERTER[0]
    if conv is None:
        return latex2sympy(text, conversion_config=_config())
    normal = normalize_latex(text, NormalizationConfig())
    try:
        conv.full = False
        return conv.parse(normal)
    except Exception:
        pass
    conv.full = True
    try:
        return conv.parse(normal)
    finally:
        conv.full = False


def parse(text: str) -> Any:
    """LaTeX → SymPy expression with exact rationals for decimals, ``i`` read as the
    imaginary unit and sums and products evaluated; raises on failure (not an expression,
    unevaluated, infinite, an unknown function, or ``\\gamma``, which latex2sympy reads as
    Euler's constant where a solution means an angle or a root). Cached per process."""
    hit = _PARSE_CACHE.get(text)
    if hit is not None:
        return hit
    import sympy

    expr = latex_to_sympy(text)
    if not isinstance(expr, sympy.Expr):
        raise ValueError(f"not an expression: {type(expr).__name__}")
    expr = expr.replace(lambda e: e.is_Float, lambda f: sympy.Rational(str(f)))
    if sympy.Symbol("i") in expr.free_symbols:
        expr = expr.subs(sympy.Symbol("i"), sympy.I)
    expr = expr.doit()  # latex2sympy builds unevaluated sums and products
    if expr.has(sympy.Integral, sympy.Limit, sympy.Sum, sympy.Derivative, sympy.Product,
                sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ValueError("unevaluated or infinite")
    from sympy.core.function import AppliedUndef

    if expr.atoms(AppliedUndef):
        raise ValueError("unknown function")
    if expr.has(sympy.EulerGamma):  # latex2sympy reads \gamma so; in a solution it is a name
        raise ValueError("\\gamma read as Euler's constant")
    if len(_PARSE_CACHE) > 4096:
        _PARSE_CACHE.clear()
    _PARSE_CACHE[text] = expr
    return expr
