"""Find arithmetic claims ("expression = value") in free text and evaluate them exactly.

The pipeline is: :func:`normalize` (LaTeX, Unicode, currency, markdown -> plain operators),
a regex tokenizer, a pass that classifies words (unit words such as "5 apples * 2", operator
words such as "times", "of" after a percent or a fraction), then maximal runs of arithmetic
tokens split on "=" into equality chains. Each side of a claim is parsed by a small
recursive-descent parser into an AST evaluated with :class:`fractions.Fraction`. Python's
``eval`` is never used.

The extractor is deliberately timid: text it cannot read with confidence (a time "3:30", a
ratio "3:2", an ordinal "2nd", a variable "2x", "...", an unknown LaTeX command such as
``\\sqrt``) poisons the run of arithmetic it touches, and an expression that may have been cut
off by words ("price * 5 + 3 = ...") is not claimed. Judging the claims is
:mod:`criticlab.critics.arithmetic`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

POISON = "¤"  # stands for anything the extractor must not read across

# -- normalisation ----------------------------------------------------------------------------

_FRAC = re.compile(r"\\[dtc]?frac\s*")
_UNWRAP = re.compile(
    r"\\(?:text|textbf|textit|textrm|texttt|mathrm|mathbf|mathit|mathsf|mbox|operatorname"
    r"|boxed|fbox|emph)\s*(?=\{)"
)
_SIMPLE_LATEX = {
    "times": " * ", "cdot": " * ", "ast": " * ", "div": " / ", "approx": " ≈ ",
    "sim": " ≈ ", "simeq": " ≈ ", "thickapprox": " ≈ ", "approxeq": " ≈ ", "doteq": " ≈ ",
    "left": "", "right": "", "big": " ", "Big": " ", "bigg": " ", "Bigg": " ", "bigl": " ",
    "bigr": " ", "Bigl": " ", "Bigr": " ", "quad": " ", "qquad": " ", "displaystyle": " ",
    "textstyle": " ", "hline": "\n", "newline": "\n", "noindent": " ", "nonumber": " ",
    "percent": "%", "dollar": " ", "dollars": " ", "euro": " ", "pounds": " ",
    "neq": " ; ", "ne": " ; ", "leq": " ; ", "le": " ; ", "geq": " ; ", "ge": " ; ",
    "lt": " ; ", "gt": " ; ", "leqslant": " ; ", "geqslant": " ; ", "Rightarrow": " ; ",
    "Longrightarrow": " ; ", "rightarrow": " ; ", "to": " ; ", "implies": " ; ",
    "therefore": " ; ", "because": " ; ", "iff": " ; ", "mapsto": " ; ",
}
_UNICODE = {
    "×": " * ", "✕": " * ", "⋅": " * ", "·": " * ", "∙": " * ", "÷": " / ", "∕": " / ",
    "−": "-", "＝": "=", "≃": "≈", "≒": "≈", "…": POISON, "√": POISON, "π": POISON,
    "±": POISON, "∞": POISON, "≠": " ; ", "≤": " ; ", "≥": " ; ", "⇒": " ; ", "→": " ; ",
    "⟹": " ; ", "—": " ; ", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "’": "'",
    "²": "^2", "³": "^3", "$": " ", "€": " ", "£": " ", "¥": " ", "₹": " ", "¢": " cents ",
}
_VULGAR = {"½": "1/2", "⅓": "1/3", "⅔": "2/3", "¼": "1/4", "¾": "3/4", "⅕": "1/5",
           "⅖": "2/5", "⅗": "3/5", "⅘": "4/5", "⅙": "1/6", "⅚": "5/6", "⅛": "1/8",
           "⅜": "3/8", "⅝": "5/8", "⅞": "7/8"}


_CURRENCY = re.compile(r"([$€£¥₹])\s*((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)")
_CURRENCY_WORD = {"$": "dollars", "€": "euros", "£": "gbp", "¥": "yen", "₹": "rupees"}


def _read_group(s: str, i: int) -> tuple[str, int] | None:
    """Read one LaTeX argument at ``s[i:]``: a braced group or a single character."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return None
    if s[i] != "{":
        return (s[i], i + 1) if s[i].isalnum() else None
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j], j + 1
    return None


def _replace_commands(s: str, pattern: re.Pattern[str], nargs: int, fmt: str) -> str:
    out = []
    pos = 0
    while (m := pattern.search(s, pos)) is not None:
        args = []
        i = m.end()
        for _ in range(nargs):
            g = _read_group(s, i)
            if g is None:
                break
            args.append(g[0])
            i = g[1]
        out.append(s[pos : m.start()])
        if len(args) < nargs:
            out.append(POISON)
            pos = m.end()
            continue
        out.append(fmt.format(*args))
        pos = i
    out.append(s[pos:])
    return "".join(out)


def _latex_command(m: re.Match[str]) -> str:
    name = m.group(1)
    return _SIMPLE_LATEX.get(name, POISON)


def _markdown_star(m: re.Match[str]) -> str:
    s, i, j = m.string, m.start(), m.end()
    before = s[:i].rstrip()[-1:]
    after = s[j:].lstrip()[:1]
    if before and after and (before.isdigit() or before == ")") and (
            after.isdigit() or after == "("):
        return "^"
    return " "


def _mixed_latex(m: re.Match[str]) -> str:
    w, a, b = m.group(1), m.group(2), m.group(3)
    return f"({w}+{a}/{b})" if int(a) < int(b) else POISON


def normalize(text: str) -> str:
    """Rewrite LaTeX, Unicode operators, currency and markdown into the plain notation the
    tokenizer reads ("\\frac{1}{3} \\times 18" -> "((1)/(3)) * 18"). Commands it does not know
    become a poison mark, so nothing is claimed across them."""
    s = text.replace("\r", "\n")
    s = re.sub(r"\\[()]", " ", s)  # inline math
    s = re.sub(r"\\[\[\]]", "\n", s)  # display math: a line of its own
    s = re.sub(r"\.?\s*\\(?:overline|bar|dot|dots|ldots|cdots|vdots)(?![A-Za-z])", POISON, s)
    s = s.replace("\\$", "$").replace("\\%", "%").replace("{,}", ",").replace("\\&", " and ")
    s = re.sub(r"(?<=\d)\\[,!;: ](?=\d{3}\b)", "", s)  # 1\,000 thousands separator
    s = re.sub(r"\\[,;:! ]|~(?=\\)", " ", s)
    s = s.replace("\\\\", "\n").replace("&", " ")
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?", " degrees ", s)
    s = re.sub(r"\\(?:begin|end)\s*\{[^{}]*\}", " ", s)
    s = re.sub(r"(?<![\d.])(\d+)\\[dt]?frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}",
               _mixed_latex, s)  # 3\frac{4}{5} is a mixed number
    s = _replace_commands(s, _FRAC, 2, "(({0})/({1}))")
    s = _replace_commands(s, _UNWRAP, 1, " {0} ")
    s = re.sub(r"_\{([^{}]*)\}", r"_\1", s)
    s = re.sub(r"\\([A-Za-z]+)", _latex_command, s)
    s = re.sub(r"\\.", " ", s)
    s = _CURRENCY.sub(lambda m: f" {m.group(2)} {_CURRENCY_WORD[m.group(1)]} ", s)
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    for k, v in _VULGAR.items():
        s = re.sub(rf"(\d)\s*{k}", rf"(\1+{v})", s)
        s = s.replace(k, f"({v})")
    s = re.sub(r"(?m)^[ \t]*(?:[-*•]|\d+[.)])[ \t]+", " ", s)  # bullets and list numbers
    s = re.sub(r"\*\*", _markdown_star, s)
    s = re.sub(r"(?<=\d)[ \t]*[xX][ \t]*(?=\d)", " * ", s)  # 60x60, 60 x 60
    s = re.sub(r"(?<=\d)–(?=\d)", POISON, s)  # 5–10 is a range
    s = s.replace("–", "-")
    s = re.sub(r"(?<=\d)-(?=[A-Za-z])", " ", s)  # 3-pound bag
    s = re.sub(r"[=≈]\s*>|-+>|<-+|<=|>=|=<|!=", " ; ", s)
    s = re.sub(r"~\s*=|=\s*~|≈\s*=|=\s*≈", " ≈ ", s)
    s = re.sub(r"~(?=\s*[\d.(-])", " ≈ ", s)
    s = re.sub(r"\.{3,}", POISON, s)
    return s


# -- tokens -----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<poison>¤)
   |(?P<clock>\d+(?::\d+)+)
   |(?P<mixed>(?<![\d.,/])\d+[ ]+(?:and[ ]+)?\d+/\d+(?![\d./]))
   |(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)
   |(?P<word>[A-Za-z_][\w']*)
   |(?P<pow>\^)
   |(?P<op>[-+*/])
   |(?P<pct>%)
   |(?P<lp>[(\[{])
   |(?P<rp>[)\]}])
   |(?P<eq>==?)
   |(?P<approx>≈)
   |(?P<nl>\n)
   |(?P<space>[ \t]+)
   |(?P<punct>.)
    """,
    re.VERBOSE,
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


GLUED_UNITS = _words(
    "km cm mm kg mg lb lbs oz ml mph kph kmh ft yd mi hr hrs min mins sec secs GB MB KB TB "
    "gb mb kb gal qt pt sq"
)
_ORDINAL = _words("st nd rd th am pm")
_OP_WORDS = {"times": "*", "x": "*", "plus": "+", "minus": "-"}
_OP_WORD_PAIRS = {("multiplied", "by"): "*", ("divided", "by"): "/"}
NOT_UNITS = _words(
    "is are was were be been being and or so then thus hence therefore which that this "
    "these those we he she it they i you if but because since as to the a an for with by "
    "from into equals equal gives give get gets got makes make has have had will would can "
    "could should than more less fewer left remaining total equation where when what how "
    "there here not no yes also step answer"
)
# words that, right before or after a run, say the arithmetic continues into the words
MULTIPLIERS = _words(
    "twice double doubled triple tripled thrice half halved halves third thirds quarter "
    "quarters fourth fourths fifth fifths sixth sixths eighth eighths tenth tenths percent "
    "fraction"
)
LEFT_LINK_WORDS = MULTIPLIERS | _words("times x than plus minus over")
# "day 1 * 2", "Weeks 1-2": a number that names something, not a quantity
LABELS = _words(
    "day days week weeks month months year years step steps part parts case cases page "
    "pages line lines option level grade round question stage phase chapter item room floor "
    "row column group team version problem exercise equation hole lap game no number"
)
RIGHT_LINK_WORDS = _words("times plus minus over divided multiplied squared cubed to percent")


@dataclass
class Tok:
    kind: str  # num pct op lp rp eq approx word unit punct nl poison
    text: str
    start: int
    end: int
    value: Fraction | None = None
    decimals: int = 0
    glued: bool = False  # no space between this token and the previous one


def _num_token(text: str, start: int, end: int) -> Tok:
    digits = text.replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return Tok("num", text, start, end, Fraction(digits), decimals)


def tokenize(s: str) -> list[Tok]:
    """Tokenize normalised text (see :func:`normalize`) and classify its words."""
    toks: list[Tok] = []
    prev_end = -1
    for m in _TOKEN.finditer(s):
        kind = m.lastgroup or "punct"
        text, a, b = m.group(), m.start(), m.end()
        if kind == "space":
            continue
        glued = a == prev_end
        prev_end = b
        if kind == "num" and len(text) > 1 and text[0] == "0" and text[1].isdigit():
            tok = Tok("poison", text, a, b)  # 0900: a clock time or a code
        elif kind == "num":
            tok = _num_token(text, a, b)
        elif kind == "mixed":
            whole, frac = text.split()[0], text.split()[-1]
            n, d = frac.split("/")
            if int(d) == 0 or int(n) >= int(d):
                toks.append(_num_token(whole, a, a + len(whole)))
                tok = Tok("poison", frac, b - len(frac), b)
            else:
                tok = Tok("num", f"{whole} {frac}", a, b, int(whole) + Fraction(int(n), int(d)))
        elif kind == "clock":
            tok = Tok("poison", text, a, b)
        elif kind == "eq":
            tok = Tok("eq", "=", a, b)
        elif kind == "pow":
            tok = Tok("op", "^", a, b)
        else:
            tok = Tok(kind, text, a, b)
        tok.glued = glued
        toks.append(tok)
    return _classify_words(_poison_calls(_drop_word_groups(_fix_glue(toks))))


def _poison_calls(toks: list[Tok]) -> list[Tok]:
    """"f(3)" and "(1/4)x" are a function and a variable, not arithmetic."""
    for i in range(1, len(toks)):
        a, b = toks[i - 1], toks[i]
        if b.glued and ((a.kind == "word" and b.kind == "lp") or (
                a.kind == "rp" and b.kind == "word")):
            toks[i - 1 if a.kind == "word" else i] = Tok("poison", a.text + b.text, a.start, b.end)
    return toks


def _fix_glue(toks: list[Tok]) -> list[Tok]:
    out: list[Tok] = []
    for t in toks:
        prev = out[-1] if out else None
        if prev is not None and prev.kind == "num" and t.glued:
            low = t.text.lower()
            if t.kind == "word":
                if low in _ORDINAL:
                    out[-1] = Tok("poison", prev.text + t.text, prev.start, t.end)
                    continue
                if t.text not in GLUED_UNITS:
                    out[-1] = Tok("poison", prev.text + t.text, prev.start, t.end)
                    continue
            elif t.text == "!" or t.kind == "num":
                out[-1] = Tok("poison", prev.text + t.text, prev.start, t.end)
                continue
            elif t.kind == "lp":  # 2(3 + 4): implicit product
                out.append(Tok("op", "*", t.start, t.start))
        if prev is not None and prev.kind == "rp" and t.kind in ("lp", "num") and t.glued:
            out.append(Tok("op", "*", t.start, t.start))
        if t.kind == "word" and t.text.lower() in ("percent", "pct") and prev is not None and (
            prev.kind == "num"
        ):
            out.append(Tok("pct", "%", t.start, t.end))
            continue
        if t.kind == "word" and any(c.isdigit() for c in t.text):
            t = Tok("poison", t.text, t.start, t.end)
        out.append(t)
    return out


def _drop_word_groups(toks: list[Tok]) -> list[Tok]:
    """Remove parenthesised asides made only of words: "4 hours (travel time) + 6 hours"."""
    out: list[Tok] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "lp":
            j = i + 1
            while j < len(toks) and (toks[j].kind == "word" or (
                toks[j].kind == "punct" and toks[j].text in ",'\"-")):
                j += 1
            if j < len(toks) and j > i + 1 and toks[j].kind == "rp":
                i = j + 1
                continue
        out.append(t)
        i += 1
    return out


def _is_value_end(toks: list[Tok], i: int) -> bool:
    """Whether ``toks[i]`` ends a quantity: a number, a percent, a closing parenthesis, or a
    word that follows a number within three words ("5 red apples")."""
    t = toks[i]
    if t.kind in ("num", "pct", "rp", "unit"):
        return True
    k = i
    while k >= 0 and i - k < 3 and toks[k].kind == "word" and toks[k].text.lower() not in NOT_UNITS:
        k -= 1
        if k >= 0 and toks[k].kind in ("num", "pct", "rp", "unit"):
            return True
    return False


def _classify_words(toks: list[Tok]) -> list[Tok]:
    n = len(toks)
    # operator words between quantities
    for i, t in enumerate(toks):
        if t.kind != "word" or i == 0 or i + 1 >= n:
            continue
        low = t.text.lower()
        nxt = toks[i + 1]
        if low in _OP_WORDS and nxt.kind in ("num", "lp") and _is_value_end(toks, i - 1):
            t.kind, t.text = "op", _OP_WORDS[low]
        elif low == "of" and nxt.kind in ("num", "lp") and _after_fraction_or_pct(toks, i - 1):
            t.kind = "op"
        elif (low, nxt.text.lower()) in _OP_WORD_PAIRS and i + 2 < n and toks[i + 2].kind in (
            "num", "lp") and _is_value_end(toks, i - 1):
            t.kind, t.text = "op", _OP_WORD_PAIRS[(low, nxt.text.lower())]
            nxt.kind, nxt.text = "skip", ""
    toks = [t for t in toks if t.kind != "skip"]
    n = len(toks)
    # unit words: after a quantity and before an operator, "=" or ")"
    for i, t in enumerate(toks):
        if t.kind not in ("num", "pct", "rp"):
            continue
        j = i + 1
        words = 0
        while j < n and words < 4:
            u = toks[j]
            if u.kind == "word" and _unit_word(u.text, j == i + 1 and t.kind == "num"):
                words += 1
                j += 1
            elif u.kind == "word" and u.text.lower() in ("of", "a", "an") and words > 0:
                j += 1
            elif u.kind == "op" and u.text == "/" and j + 1 < n and toks[j + 1].kind == "word" and (
                    _unit_word(toks[j + 1].text, True)):
                j += 2  # "pounds/book", "5/hour", "kb/s"
                words += 1
            else:
                break
        if j > i + 1 and j < n and toks[j].kind in ("op", "eq", "approx", "rp"):
            if toks[j - 1].kind == "op" or toks[j].text == "^":
                continue
            for k in range(i + 1, j):
                toks[k].kind = "unit"
    return toks


def _unit_word(word: str, after_number: bool) -> bool:
    """Whether ``word`` may be a unit: not a function word or a variable ("S", "y_i"); a
    lowercase single letter only right after a number ("3600 s")."""
    low = word.lower()
    if low in NOT_UNITS or low == "of" or "_" in word:
        return False
    return len(word) > 1 or (after_number and word in ("s", "m", "h", "g", "l"))


def _after_fraction_or_pct(toks: list[Tok], i: int) -> bool:
    if i < 0:
        return False
    if toks[i].kind == "pct":
        return True
    if toks[i].kind == "rp":
        return True
    return toks[i].kind == "num" and i >= 2 and toks[i - 1].text == "/" and toks[i - 2].kind in (
        "num", "rp")


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

    def __init__(self, toks: list[Tok], fractions: bool) -> None:
        self.toks = toks
        self.i = 0
        self.fractions = fractions

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expr(self) -> Expr:
        left = self.term()
        while (t := self.peek()) is not None and t.kind == "op" and t.text in "+-":
            self.take()
            left = Bin(t.text, left, self.term())
        return left

    def term(self) -> Expr:
        left = self.unary()
        while (t := self.peek()) is not None and t.kind == "op" and t.text in ("*", "/", "of"):
            self.take()
            if t.text == "/" and self.fractions and self._glued_fraction(t):
                a, _, b = self.take(), self.take(), self.take()
                assert a.value is not None and b.value is not None
                left = Bin("/", left, Bin("/", Num(a.value, 0, a.text), Num(b.value, 0, b.text)))
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
        t = self.peek()
        if t is not None and t.kind == "op" and t.text in "+-":
            nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
            # after an operator only a minus glued to a number: "5 * -3", not "1 *+1"
            if self.i > 0 and (t.text == "+" or nxt is None or not nxt.glued):
                raise ValueError("operator after operator")
            self.take()
            arg = self.unary()
            return Neg(arg) if t.text == "-" else arg
        return self.power()

    def power(self) -> Expr:
        base = self.postfix()
        t = self.peek()
        if t is not None and t.kind == "op" and t.text == "^":
            self.take()
            return Bin("^", base, self.unary())
        return base

    def postfix(self) -> Expr:
        e = self.atom()
        while (t := self.peek()) is not None and t.kind == "pct":
            self.take()
            e = Pct(e)
        return e

    def atom(self) -> Expr:
        t = self.peek()
        if t is None:
            raise ValueError("unexpected end")
        self.take()
        if t.kind == "num" and t.value is not None:
            return Num(t.value, t.decimals, t.text)
        if t.kind == "lp":
            e = self.expr()
            close = self.peek()
            if close is None or close.kind != "rp":
                raise ValueError("unbalanced parenthesis")
            self.take()
            return e
        raise ValueError(f"unexpected {t.text!r}")


def parse(toks: list[Tok], fractions: bool = True) -> Expr | None:
    """Parse a whole token list as one expression, or ``None``. With ``fractions`` a tight
    "3/4" after a spaced division is one number ("60 / 3/4" = 80), else "/" is plainly
    left-associative (60 / 3 / 4 = 5)."""
    if not toks:
        return None
    p = _Parser(toks, fractions)
    try:
        e = p.expr()
    except (ValueError, RecursionError):
        return None
    return e if p.i == len(toks) else None


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
        if b.denominator != 1 or abs(b) > 64 or (a == 0 and b < 0):
            raise ValueError("unsupported power")
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
        h = Fraction(1, 2 * 10**e.decimals) if e.decimals >= rf else Fraction(0)
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
    if c != d or c.denominator != 1 or abs(c) > 64:
        raise ValueError("unsupported power")
    n = int(c)
    if n < 0 and a <= 0 <= b:
        raise ZeroDivisionError
    ends = (a**n, b**n)
    lo, hi = min(ends), max(ends)
    if n % 2 == 0 and n > 0 and a <= 0 <= b:
        lo = Fraction(0)
    return lo, hi


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


# -- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One side of a claim: the parsed expression, its rendering, and the unit words that
    were dropped from it."""

    expr: Expr
    text: str
    units: frozenset[str] = frozenset()
    start: int = 0
    end: int = 0
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
    source: str = "text"
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def text(self) -> str:
        return f"{self.left.text} {self.relation} {self.right.text}"


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
    when the segment is the inside of a larger group: "(41^2, 41 * 43) = 41", "= (4, 7.5)"."""
    seg = list(seg)
    while seg:
        depth = lowest = 0
        for t in seg:
            depth += (t.kind == "lp") - (t.kind == "rp")
            lowest = min(lowest, depth)
        if lowest == 0 and depth == 0:
            return seg
        if last and lowest < 0 and seg[-1].kind == "rp":
            seg.pop()
        elif first and depth > lowest and seg[0].kind == "lp":
            seg.pop(0)
        else:
            return None
    return seg


def _runs(toks: list[Tok]) -> list[tuple[int, int]]:
    """Maximal [start, end) spans of arithmetic tokens; a newline continues a run only when an
    equation goes on across it ("x = 3 + 4 \\n = 7")."""
    spans: list[tuple[int, int]] = []
    arith = ("num", "pct", "op", "lp", "rp", "eq", "approx", "unit")
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
    claims: list[Claim] = []
    for m in re.finditer(r"<<([^<>]*)>>", text):
        for c in _claims_in(m.group(1)):
            claims.append(Claim(c.left, c.relation, c.right, c.then_number, "annotation"))
    claims.extend(_claims_in(re.sub(r"<<[^<>]*>>", " ", text)))
    return claims


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
    if not body:
        return None
    if k == 0 and _cut_on_left(body, toks, a):
        return None
    if k == n - 1:
        if _cut_on_right(body, toks, b):
            return None
        units |= _trailing_words(toks, b)
    e = parse(body)
    if e is None and k == n - 1:
        # "= 0.20 (20 cents)": a parenthesised restatement after the value
        for i in range(1, len(body)):
            if body[i].kind == "lp" and not body[i].glued and body[i - 1].kind in ("num", "pct"):
                body = body[:i]
                e = parse(body)
                break
    if e is None:
        return None
    alt = parse(body, fractions=False)
    return Side(e, render(e), units, body[0].start, body[-1].end, None if alt == e else alt)


_CONNECTIVES = _words(
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
