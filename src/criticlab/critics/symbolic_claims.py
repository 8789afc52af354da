"""Find the LaTeX claims of a solution step for :mod:`criticlab.critics.symbolic`.

Pure text work (no SymPy): the math of a step (``\\[...\\]``, ``\\(...\\)``, ``$$...$$``,
``$...$``, ``align`` rows) is normalised (``\\left``/``\\right``, spacing, ``\\dfrac``,
``\\frac12``, ``\\boxed``, repeating decimals, degrees) and split into pieces (at top-level
``", "``, ``;``, ``\\quad``, ``\\text{and}``, ``\\implies``/``\\Rightarrow``), each piece into
a chain ``A rel B rel C``. Every link of a chain is a :class:`Claim`; an implication between
two equations is a claim of kind ``"implies"``, and so is ``x = 3`` after a solving cue
("so", "thus", ...) with the latest earlier one-variable equation in ``x`` as its premise.

The extractor is timid: a piece with a relation it does not judge (``\\equiv``, ``\\in``,
``\\sim``, ratios ``3:4``, ``\\pm``, ``\\ldots``) is skipped, a step about residues or bases is
skipped, and ``\\approx`` links are not claims. Judging is the worker's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Claim", "extract_claims", "math_segments", "normalize", "undecidable"]


@dataclass(frozen=True)
class Claim:
    """``left rel right``. ``kind`` is "link" (a link of a chain) or "implies" (``left`` and
    ``right`` are equations ``a = b`` and the claim is that ``left`` gives ``right``).
    ``identity`` says a link with free symbols is meant as an identity (a continuation of a
    chain, not an equation to solve). ``decimals`` is the fewest decimals of a decimal number
    written in the claim (``None`` when none is)."""

    left: str
    rel: str
    right: str
    kind: str = "link"
    identity: bool = False
    decimals: int | None = None
    percent: bool = False
    trig_degrees: bool = False
    premises: tuple[str, ...] = ()  # "x = 3" after several equations: it must solve one

    @property
    def text(self) -> str:
        if self.kind == "implies":
            return f"{self.left} \\implies {self.right}"
        return f"{self.left} {self.rel} {self.right}"


_MATH = re.compile(r"\\begin\{(?:align|equation|gather|eqnarray|multline)\*?\}(.+?)\\end\{"
                   r"(?:align|equation|gather|eqnarray|multline)\*?\}"
                   r"|\\\[(.+?)\\\]|\\\((.+?)\\\)|\$\$(.+?)\$\$|\$(.+?)\$", re.S)
# a step about residues, bases or digit carries: "=" may not be equality of numbers
_SKIP_STEP = re.compile(r"\\[pb]?mod\b|\bmod(?:ulo)?\b|\\equiv|\bbase[\s$\\(_-]*\d|\bcongruen"
                        r"|\bremainders?\b|\bquotient|\beuclid",
                        re.I)
_BAD_PIECE = re.compile(
    r"\\(?:equiv|in|notin|sim|cong|subset|subseteq|supset|cup|cap|to|mapsto|perp|parallel|mid"
    r"|pm|mp|ldots|cdots|dots|vdots|ddots|int|iint|oint|lim|begin|end|cases|vec|overrightarrow"
    r"|angle|triangle|measuredangle|arc|overarc|wideparen|prime|land|lor|neg|forall"
    r"|exists|bmod|pmod|mod|gcd|lcm|max|min|det|operatorname|mathbb|choose|over|hat|tilde"
    r"|underbrace|overbrace|not|propto|ll|gg|star|ast|oplus|otimes|deg)(?![a-zA-Z])"
    r"|\d_\{?\d|\\(?=\s|$)|\.\.\.|:|!=|(?<![_^\d])\d+\s+\d|\^\s*\{?\s*[-+]?\d{4,}|'|\\{|\\}|\|\||(?<!\\sqrt)\[|\](?!\s*\{)|\\\\|#|"
    r"\b[A-Z]{2,}\b|[A-Z][A-Z]"
)
_RELS = re.compile(r"\\(?:leq?|geq?|neq?|approx|lt|gt)(?![a-zA-Z])|<=|>=|[=<>≤≥≠≈]")
_REL_NAME = {"\\le": "<=", "\\leq": "<=", "\\ge": ">=", "\\geq": ">=", "\\ne": "!=",
             "\\neq": "!=", "\\approx": "≈", "\\lt": "<", "\\gt": ">", "<=": "<=",
             ">=": ">=", "=": "=", "<": "<", ">": ">", "≤": "<=", "≥": ">=", "≠": "!=",
             "≈": "≈"}
_IMPLIES = re.compile(r"\\(?:implies|Rightarrow|Longrightarrow|therefore|Leftrightarrow"
                      r"|iff|Longleftrightarrow)(?![a-zA-Z])")
_SEP_TEXT = re.compile(
    r"\\(?:text|textrm|mbox|mathrm|textbf|textit)\s*\{\s*(?:and|or|so|thus|hence|then|since"
    r"|because|where|if|when|for|with|but|giving|gives|which|therefore)\b[^{}]*\}|\\q?quad"
    r"|;|(?<![\d{]),(?!\d{3}(?!\d))|\\text\s*\{\s*,?\s*\}", re.I)
_TEXT = re.compile(r"\\(?:text|textrm|mbox|mathrm|textbf|textit|operatorname)\s*\{([^{}]*)\}")
_DECIMAL = re.compile(r"(?<![\d.])\d*\.(\d+)(?![\d.])")
_REPEATING = re.compile(r"(\d*)\.(\d*)\\overline\s*\{(\d+)\}")
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")
_TRIG = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)\b")
_VAR_E = re.compile(r"(?<![\\a-zA-Z])e(?![a-zA-Z^])")
_CUE_BEFORE = re.compile(r"\b(?:so|thus|hence|therefore|solution|solutions|solving|get|gives"
                         r"|find|obtain|yields?)\b[^.]{0,40}$", re.I)
_NOT_SOLVE = re.compile(r"\b(?:if|let|when|for|at|suppose|assum\w*|try|trying|test\w*|check\w*"
                        r"|plug\w*|substitut\w*|set|setting|say|e\.g|example|case)\b[^.]{0,30}$",
                        re.I)
_MATRIX = re.compile(r"\\begin\s*\{\s*(?:[pbvBV]?matrix|smallmatrix|array|cases|tabular)")
_SINGLE_VAR = re.compile(r"^\s*([a-zA-Z])\s*$")
_LETTER = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z](?![a-zA-Z])")


def math_segments(text: str) -> list[tuple[int, str]]:
    """(start offset, content) of every math span of ``text``."""
    out = []
    for m in _MATH.finditer(text):
        body = next(g for g in m.groups() if g is not None)
        out.append((m.start(), body))
    return out


def _unwrap(text: str, command: str) -> str:
    """``\\boxed{X}`` → ``X`` (braces matched)."""
    out, pos = [], 0
    while (i := text.find(command, pos)) >= 0:
        j = i + len(command)
        while j < len(text) and text[j] == " ":
            j += 1
        if j >= len(text) or text[j] != "{":
            out.append(text[pos:j])
            pos = j
            continue
        depth, k = 0, j
        while k < len(text):
            depth += {"{": 1, "}": -1}.get(text[k], 0)
            if depth == 0:
                break
            k += 1
        out.append(text[pos:i] + text[j + 1:k])
        pos = k + 1
    out.append(text[pos:])
    return "".join(out)


def _repeating(m: re.Match[str]) -> str:
    whole, fixed, rep = m.group(1) or "0", m.group(2), m.group(3)
    value = Fraction(int(whole)) + Fraction(int(fixed or "0"), 10 ** len(fixed)) + Fraction(
        int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def normalize(math: str) -> str:
    """Small rewrites that make the text parseable: spacing, ``\\left``/``\\right``,
    ``\\dfrac``, ``\\frac12``, ``\\boxed``, ``{,}`` thousands separators, repeating
    decimals."""
    s = math.replace("\\left", "").replace("\\right", "").replace("\\displaystyle", "")
    s = re.sub(r"(?<!\\)\\[,;:! ]|~|\\(?:big|Big|bigg|Bigg)[lr]?", " ", s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\s*\{([^{}]*)\}\s*(\d)", r"\\frac{\1}{\2}", s)
    s = _unwrap(_unwrap(s, "\\boxed"), "\\fbox")
    s = s.replace("{,}", "").replace("\\cdotp", "\\cdot").replace("\\ast", "\\cdot")
    s = s.replace("\\dot{", "\\overline{")
    s = _REPEATING.sub(_repeating, s)
    # latex2sympy reads "3(12)" and "(3)(4)" as sums: make the products explicit
    s = re.sub(r"(\d|\))\s*(?=\()", r"\1 \\cdot ", s)
    s = re.sub(r"\)\s*(?=\d)", r") \\cdot ", s)
    s = s.replace("&", " ").replace("\\lbrack", "(").replace("\\rbrack", ")")
    return s.replace("\\le ", "\\leq ").replace("\\ge ", "\\geq ").strip()


def _top_level_split(s: str, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """Split ``s`` at matches of ``pattern`` outside brackets: [(separator before, part)]."""
    parts: list[tuple[str, str]] = []
    depth, start, sep = 0, 0, ""
    i = 0
    while i < len(s):
        c = s[i]
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif depth == 0:
            m = pattern.match(s, i)
            if m is not None and m.end() > i:
                parts.append((sep, s[start:i]))
                sep, start, i = m.group(0), m.end(), m.end()
                continue
        i += 1
    parts.append((sep, s[start:]))
    return parts


def _decimals(text: str) -> int | None:
    found = [len(m.group(1)) for m in _DECIMAL.finditer(text)]
    return min(found) if found else None


def _clean_side(side: str) -> str | None:
    """The side ready to parse, or ``None`` when it carries unit words the other side may not
    share (checked by the caller) or is empty."""
    s = side.strip().rstrip(".,;").strip()
    return s or None


def _units(side: str) -> frozenset[str]:
    return frozenset(w.strip().lower().rstrip("s") for w in _TEXT.findall(side) if w.strip())


def _strip_units(side: str) -> str:
    return _TEXT.sub(" ", side).strip()


_DEGREE_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\^\s*\{?\s*\\circ\s*\}?|°)")


def _prep(side: str, trig: bool) -> str:
    if trig:
        side = _DEGREE_NUMBER.sub(r"(\1 \\cdot \\frac{\\pi}{180})", side)
        return _DEGREE.sub(r"\\cdot \\frac{\\pi}{180}", side)
    return _DEGREE.sub(" ", side)


def _chain(piece: str) -> tuple[list[str], list[str]] | None:
    parts = _top_level_split(piece, _RELS)
    sides = [p for _, p in parts]
    rels = [_REL_NAME.get(sep.strip(), sep.strip()) for sep, _ in parts[1:]]
    if not rels:
        return None
    return sides, rels


def _piece_claims(piece: str, prev_tail: str | None, problem_vars: bool
                  ) -> tuple[list[Claim], str | None]:
    """The link claims of one piece, and the last side (for a continuation "= ..." in the
    next math span)."""
    chain = _chain(piece)
    if chain is None:
        return [], None
    sides, rels = chain
    continuation = not sides[0].strip() and prev_tail is not None
    if continuation:
        assert prev_tail is not None
        sides = [prev_tail, *sides[1:]]
    trig = _TRIG.search(piece) is not None and _DEGREE.search(piece) is not None
    claims: list[Claim] = []
    for j, rel in enumerate(rels):
        if rel == "≈":
            continue
        left, right = _clean_side(sides[j]), _clean_side(sides[j + 1])
        if left is None or right is None:
            continue
        lu, ru = _units(left), _units(right)
        if lu != ru:
            continue  # "2 dozen = 24", "\text{Area} = 5": a conversion or a name
        left, right = _strip_units(left), _strip_units(right)
        if not left or not right or _VAR_E.search(left + " " + right):
            continue
        text = f"{left} {rel} {right}"
        first_rel = rels[0] if not continuation else "="
        identity = (j >= 1 or continuation) and first_rel == "=" and rel == "="
        identity = identity or "\\frac{d}{d" in left
        claims.append(Claim(_prep(left, trig), rel, _prep(right, trig), identity=identity,
                            decimals=_decimals(text), percent="%" in text,
                            trig_degrees=trig))
    tail = _clean_side(sides[-1])
    return claims, (_strip_units(tail) if tail else None)


def _variables(side: str) -> set[str]:
    return set(_LETTER.findall(re.sub(r"\\[a-zA-Z]+", " ", side)))


_GREEK = re.compile(r"\\(?:alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|"
                    r"iota|kappa|lambda|mu|nu|xi|rho|varrho|sigma|tau|upsilon|phi|varphi|chi|"
                    r"psi|omega|Gamma|Delta|Theta|Lambda|Xi|Sigma|Phi|Psi|Omega)(?![a-zA-Z])")


def _symbols(side: str) -> set[str]:
    """What latex2sympy would read as symbols: single letters and the letters of words
    outside commands and ``\\text{}`` ("xyz" is x·y·z, "Total" T·o·t·a·l), and Greek
    letters but π."""
    plain = re.sub(r"\\[a-zA-Z]+", " ", _TEXT.sub(" ", side))
    return set(re.findall(r"[a-zA-Z]", plain)) | {m.group(0) for m in _GREEK.finditer(side)}


def _equation(piece: str) -> tuple[str, str] | None:
    """``(a, b)`` when the piece is an equation chain ``a = ... = b`` (all links "=")."""
    chain = _chain(piece)
    if chain is None:
        return None
    sides, rels = chain
    if any(r != "=" for r in rels) or any(not s.strip() for s in sides):
        return None
    a, b = _clean_side(sides[0]), _clean_side(sides[-1])
    if a is None or b is None or _TEXT.search(a + b) or _VAR_E.search(a + " " + b):
        return None
    return a, b


def _pieces(math: str) -> list[tuple[str, str]]:
    """(separator before, piece) of one math span, split at ", ", ";", "\\quad", "\\text{and}"
    and implication arrows; pieces with relations the verifier does not judge are dropped
    (their separator is kept, so an implication across them is not claimed)."""
    out = []
    for sep, part in _top_level_split(math, re.compile(_SEP_TEXT.pattern + "|" +
                                                       _IMPLIES.pattern, re.I)):
        implies = _IMPLIES.fullmatch(sep.strip()) is not None
        piece = part.strip()
        if not piece or _BAD_PIECE.search(piece):
            out.append(("bad", ""))
            continue
        out.append(("implies" if implies else "", piece))
    return out


def extract_claims(step: str, earlier: list[tuple[str, str]] | None = None,
                   problem_vars: bool = False) -> list[Claim]:
    """Every claim of one step, in order. ``earlier`` holds the one-variable equations of the
    earlier steps (and the problem), latest last; it is extended with this step's, so that a
    later ``x = 3`` can be checked against them."""
    if earlier is None:
        earlier = []
    if _SKIP_STEP.search(step):
        return []
    claims: list[Claim] = []
    used: list[tuple[str, str]] = []  # equations solved in this step: gone after it
    prev_tail: str | None = None
    for start, raw in math_segments(step):
        if _MATRIX.search(raw):
            prev_tail = None
            continue
        math = normalize(raw)
        if "\\\\" in raw or "\\begin" in raw:
            rows = [r for r in re.split(r"\\\\", re.sub(r"\\(?:begin|end)\{[a-z*]+\}", "", math))
                    if r.strip()]
        else:
            rows = [math]
        for row in rows:
            prev_eq: tuple[str, str] | None = None
            for sep, piece in _pieces(row):
                if sep == "bad":
                    prev_eq, prev_tail = None, None
                    continue
                found, prev_tail = _piece_claims(piece, prev_tail, problem_vars)
                claims.extend(found)
                eq = _equation(piece)
                if eq is not None and sep == "implies" and prev_eq is not None:
                    claims.append(_implies(prev_eq, eq))
                elif eq is not None and _SINGLE_VAR.match(eq[0]) and not _variables(eq[1]):
                    # "x = 3" after equations in x: it must solve one of them; it uses them up
                    # (a later "x = 5" is another case, not a solution of the same ones)
                    var = eq[0].strip()
                    pending = [e for e in earlier if _variables(e[0] + " " + e[1]) == {var}]
                    if pending and sep != "implies" and _solving_cue(step[:start]):
                        claims.append(_implies(pending[-1], eq, tuple(pending)))
                    used.extend(pending)
                if eq is not None:
                    prev_eq = eq
                    if len(_variables(eq[0] + " " + eq[1])) == 1 and not _SINGLE_VAR.match(eq[0]):
                        earlier.append(eq)
    earlier[:] = [e for e in earlier if e not in used]
    return claims


def undecidable(claim: Claim) -> str | None:
    """Why a claim cannot be decided, known from its text alone (so SymPy is not asked):
    a link with variables that is not meant as an identity is an equation or a condition."""
    if claim.kind != "link" or (claim.identity and claim.rel == "="):
        return None
    if re.search(r"\\(?:sum|prod)(?![a-zA-Z])", claim.left + claim.right):
        return None
    if _symbols(claim.left + " " + claim.right) - {"i"}:
        return f'"{claim.text}": an equation or a condition, not an identity'
    return None


def _implies(p: tuple[str, str], q: tuple[str, str],
             alternatives: tuple[tuple[str, str], ...] = ()) -> Claim:
    trig = _TRIG.search(p[0] + p[1] + q[0] + q[1]) is not None
    left = f"{_prep(p[0], trig)} = {_prep(p[1], trig)}"
    right = f"{_prep(q[0], trig)} = {_prep(q[1], trig)}"
    premises = tuple(f"{_prep(a, trig)} = {_prep(b, trig)}" for a, b in alternatives)
    return Claim(left, "=>", right, kind="implies", decimals=_decimals(left + right),
                 trig_degrees=trig, premises=premises)


def _solving_cue(before: str) -> bool:
    tail = before[-80:]
    return _CUE_BEFORE.search(tail) is not None and _NOT_SOLVE.search(tail) is None


def problem_equations(question: str) -> list[tuple[str, str]]:
    """The one-variable equations stated in the problem (premises for ``x = 3``)."""
    out: list[tuple[str, str]] = []
    extract_claims(question, out)
    return out
