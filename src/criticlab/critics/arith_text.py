"""Normalise free text and tokenize it for the arithmetic extractor.

:func:`normalize` rewrites LaTeX, Unicode, currency and markdown into plain operators;
:func:`tokenize` splits the result with a regex and classifies its words (unit words such as
"5 apples * 2", operator words such as "times", "of" after a percent or a fraction). Text the
extractor cannot read with confidence (a time "3:30", a ratio "3:2", an ordinal "2nd", a
variable "2x", "...", an unknown LaTeX command such as ``\\sqrt``) becomes a poison token.
The parser is :mod:`criticlab.critics.arith_parse`; claims are found by
:mod:`criticlab.critics.arith_claims`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

POISON = "¤"  # stands for anything the extractor must not read across
MAX_NUMBER_CHARS = 300  # a longer number is not a quantity a person wrote: a poison token

# Every step here is linear in the text. No regex has a quantifier nested in another or followed
# by one that can match the same characters: "\s*\{?\s*" is written "\s*+(?:\{\s*+)?", and a
# pattern that starts with a run ("\s*\\left", "-+>") is tried only where the run starts
# ("(?<!\s)", "(?<!-)"), not again from each of its characters. Braces are matched once per
# text (_brace_pairs), not by a scan to the end from every "\frac{".

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


def _brace_pairs(s: str) -> dict[int, int]:
    """The index of the "}" that closes each "{" of ``s`` that is closed, in one pass."""
    pairs: dict[int, int] = {}
    opened: list[int] = []
    for m in _BRACE.finditer(s):  # only the braces, not every character
        j = m.start()
        if m.group() == "{":
            opened.append(j)
        elif opened:
            pairs[opened.pop()] = j
    return pairs


_BRACE = re.compile(r"[{}]")


def _read_group(s: str, i: int, pairs: dict[int, int]) -> tuple[str, int] | None:
    """Read one LaTeX argument at ``s[i:]``: a braced group or a single character.
    ``pairs`` is :func:`_brace_pairs` of ``s``."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return None
    if s[i] != "{":
        return (s[i], i + 1) if s[i].isalnum() else None
    j = pairs.get(i)
    return None if j is None else (s[i + 1 : j], j + 1)


def _replace_commands(s: str, pattern: re.Pattern[str], nargs: int, fmt: str) -> str:
    out = []
    pos = 0
    pairs: dict[int, int] | None = None  # read at the first command only
    while (m := pattern.search(s, pos)) is not None:
        if pairs is None:
            pairs = _brace_pairs(s) if "{" in s else {}
        args = []
        i = m.end()
        for _ in range(nargs):
            g = _read_group(s, i, pairs)
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
    s, i, j = m.string, m.start() - 1, m.end()
    # the nearest non-space characters, read without copying the text on either side
    while i >= 0 and s[i].isspace():
        i -= 1
    while j < len(s) and s[j].isspace():
        j += 1
    before = s[i] if i >= 0 else ""
    after = s[j] if j < len(s) else ""
    if before and after and (before.isdigit() or before == ")") and (
            after.isdigit() or after == "("):
        return "^"
    return " "


def _mixed_latex(m: re.Match[str]) -> str:
    w, a, b = m.group(1), m.group(2), m.group(3)
    if max(len(w), len(a), len(b)) > MAX_NUMBER_CHARS:
        return POISON  # not a number people write; int() of it would cost quadratic time
    return f"({w}+{a}/{b})" if int(a) < int(b) else POISON


# normalize's patterns, compiled once; each is tried only when a character it needs is in the
# text (a pattern that cannot match leaves the text as it is, so the guards change nothing)
_INLINE_MATH = re.compile(r"\\[()]")
_LEFT = re.compile(r"(?<!\s)\s*+\\left(?![A-Za-z])")
_DISPLAY_MATH = re.compile(r"\\[\[\]]")
_OVERLINE = re.compile(
    r"(?:\.|(?<![\s.]))\s*+\\(?:overline|bar|dot|dots|ldots|cdots|vdots)(?![A-Za-z])")
_THIN_THOUSANDS = re.compile(r"(?<=\d)\\[,!;: ](?=\d{3}\b)")
_LATEX_SPACES = re.compile(r"\\[,;:! ]")  # what both _THIN_THOUSANDS and _LATEX_SPACE need
_LATEX_SPACE = re.compile(r"\\[,;:! ]|~(?=\\)")
_DEGREES = re.compile(r"\^\s*+(?:\{\s*+)?\\circ\s*+\}?")
_ENVIRONMENT = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}")
_MIXED_LATEX = re.compile(r"(?<![\d.])(\d+)\\[dt]?frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_SUBSCRIPT = re.compile(r"_\{([^{}]*)\}")
_COMMAND = re.compile(r"\\([A-Za-z]+)")
_ESCAPE = re.compile(r"\\.")
_BULLET = re.compile(r"(?m)^[ \t]*(?:[-*•]|\d+[.)])[ \t]+")
_BOLD = re.compile(r"\*\*")
_TIMES_X = re.compile(r"(?<=\d)[ \t]*[xX][ \t]*(?=\d)")
_RANGE = re.compile(r"(?<=\d)–(?=\d)")
_HYPHEN_WORD = re.compile(r"(?<=\d)-(?=[A-Za-z])")
_ARROW = re.compile(r"[=≈]\s*+>|(?<!-)-++>|<-++|<=|>=|=<|!=")
_TILDE_EQ = re.compile(r"~\s*=|=\s*~|≈\s*=|=\s*≈")
_TILDE = re.compile(r"~(?=\s*[\d.(-])")
_ELLIPSIS = re.compile(r"\.{3,}")
# every _UNICODE key is one character and no replacement holds a key, so one str.translate
# does what a str.replace per key did
_UNICODE_TABLE = str.maketrans(_UNICODE)
_VULGAR_MIXED = {k: (re.compile(rf"(\d)\s*{k}"), rf"(\1+{v})") for k, v in _VULGAR.items()}
_CURRENCY_CHARS = frozenset(_CURRENCY_WORD)


def _currency(m: re.Match[str]) -> str:
    return f" {m.group(2)} {_CURRENCY_WORD[m.group(1)]} "


def normalize(text: str) -> str:
    """Rewrite LaTeX, Unicode operators, currency and markdown into the plain notation the
    tokenizer reads ("\\frac{1}{3} \\times 18" -> "((1)/(3)) * 18"). Commands it does not know
    become a poison mark, so nothing is claimed across them."""
    s = text.replace("\r", "\n")
    if "\\" in s:
        if "\\(" in s or "\\)" in s:
            s = _INLINE_MATH.sub(" ", s)  # inline math
        if "\\left" in s:
            s = _LEFT.sub("", s)  # "f \left(" is "f(": a function
        if "\\[" in s or "\\]" in s:
            s = _DISPLAY_MATH.sub("\n", s)  # display math: a line of its own
        if "\\overline" in s or "\\bar" in s or "\\dot" in s or "dots" in s:
            s = _OVERLINE.sub(POISON, s)
        s = s.replace("\\$", "$").replace("\\%", "%")
    s = s.replace("{,}", ",")
    if "\\" in s:
        s = s.replace("\\&", " and ")
        if _LATEX_SPACES.search(s) is not None:
            s = _THIN_THOUSANDS.sub("", s)  # 1\,000 thousands separator
            s = _LATEX_SPACE.sub(" ", s)
        elif "~" in s:
            s = _LATEX_SPACE.sub(" ", s)
        s = s.replace("\\\\", "\n")
    s = s.replace("&", " ")
    if "\\" in s:
        if "\\circ" in s:
            s = _DEGREES.sub(" degrees ", s)
        if "\\begin" in s or "\\end" in s:
            s = _ENVIRONMENT.sub(" ", s)
        if "frac" in s:
            s = _MIXED_LATEX.sub(_mixed_latex, s)  # 3\frac{4}{5} is a mixed number
            s = _replace_commands(s, _FRAC, 2, "(({0})/({1}))")
        s = _replace_commands(s, _UNWRAP, 1, " {0} ")
    if "_{" in s:
        s = _SUBSCRIPT.sub(r"_\1", s)
    if "\\" in s:
        s = _COMMAND.sub(_latex_command, s)
        s = _ESCAPE.sub(" ", s)
    if not _CURRENCY_CHARS.isdisjoint(s):
        s = _CURRENCY.sub(_currency, s)
    s = s.translate(_UNICODE_TABLE)
    for k, (pattern, repl) in _VULGAR_MIXED.items():
        if k in s:
            s = pattern.sub(repl, s)
            s = s.replace(k, f"({_VULGAR[k]})")
    s = _BULLET.sub(" ", s)  # bullets and list numbers
    if "**" in s:
        s = _BOLD.sub(_markdown_star, s)
    s = _TIMES_X.sub(" * ", s)  # 60x60, 60 x 60
    if "–" in s:
        s = _RANGE.sub(POISON, s)  # 5–10 is a range
        s = s.replace("–", "-")
    if "-" in s:
        s = _HYPHEN_WORD.sub(" ", s)  # 3-pound bag
    if "<" in s or ">" in s or "!" in s:
        s = _ARROW.sub(" ; ", s)
    if "~" in s or "≈" in s:
        s = _TILDE_EQ.sub(" ≈ ", s)
        if "~" in s:
            s = _TILDE.sub(" ≈ ", s)
    if "..." in s:
        s = _ELLIPSIS.sub(POISON, s)
    return s


# -- tokens -----------------------------------------------------------------------------------

# Alternatives that can start on the same character keep their order (poison and punct, the
# digit ones, punct last); "word" comes first as the commonest. The spaces after a token are
# read with it ("[ \t]*" outside the groups, so a token's own span excludes them): a "space"
# token is only ever the text's leading blanks, and there is one match per token, not two.
_TOKEN = re.compile(
    r"""
    (?:(?P<word>[A-Za-z_][\w']*)
   |(?P<poison>¤)
   |(?P<clock>\d+(?::\d+)+)
   |(?P<mixed>(?<![\d.,/])\d+[ ]+(?:and[ ]+)?\d+/\d+(?![\d./]))
   |(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)
   |(?P<pow>\^)
   |(?P<op>[-+*/])
   |(?P<pct>%)
   |(?P<lp>[(\[{])
   |(?P<rp>[)\]}])
   |(?P<eq>==?)
   |(?P<approx>≈)
   |(?P<nl>\n)
   |(?P<space>[ \t]+)
   |(?P<punct>.))[ \t]*
    """,
    re.VERBOSE,
)
_PLAIN_KINDS = frozenset(("word", "punct", "op", "lp", "rp", "pct", "nl", "approx", "poison"))
_MIXED_PARTS = re.compile(r"[ /]")


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


GLUED_UNITS = word_set(
    "km cm mm kg mg lb lbs oz ml mph kph kmh ft yd mi hr hrs min mins sec secs GB MB KB TB "
    "gb mb kb gal qt pt sq"
)
_ORDINAL = word_set("st nd rd th am pm")
_OP_WORDS = {"times": "*", "x": "*", "plus": "+", "minus": "-"}
_OP_WORD_PAIRS = {("multiplied", "by"): "*", ("divided", "by"): "/"}
# the only lowercased words _classify_words may turn into an operator
_OP_TRIGGERS = frozenset(_OP_WORDS) | {"of"} | {w for w, _ in _OP_WORD_PAIRS}
NOT_UNITS = word_set(
    "is are was were be been being and or so then thus hence therefore which that this "
    "these those we he she it they i you if but because since as to the a an for with by "
    "from into equals equal gives give get gets got makes make has have had will would can "
    "could should than more less fewer left remaining total equation where when what how "
    "there here not no yes also step answer"
)
# words that, right before or after a run, say the arithmetic continues into the words
MULTIPLIERS = word_set(
    "twice double doubled triple tripled thrice half halved halves third thirds quarter "
    "quarters fourth fourths fifth fifths sixth sixths eighth eighths tenth tenths percent "
    "fraction"
)
LEFT_LINK_WORDS = MULTIPLIERS | word_set("times x than plus minus over")
# "day 1 * 2", "Weeks 1-2": a number that names something, not a quantity
LABELS = word_set(
    "day days week weeks month months year years step steps part parts case cases page "
    "pages line lines option level grade round question stage phase chapter item room floor "
    "row column group team version problem exercise equation hole lap game no number"
)
RIGHT_LINK_WORDS = word_set("times plus minus over divided multiplied squared cubed to percent")


@dataclass(slots=True)
class Tok:
    kind: str  # num pct op lp rp eq approx word unit punct nl poison
    text: str
    start: int
    end: int
    value: Fraction | None = None
    decimals: int = 0
    glued: bool = False  # no space between this token and the previous one


@lru_cache(maxsize=4096)
def _number(text: str) -> tuple[Fraction, int]:
    """The exact value of a number as written ("1,250.50") and its count of decimals; cached
    (numbers repeat, and the text is at most MAX_NUMBER_CHARS long)."""
    digits = text.replace(",", "")
    if "." not in digits:
        return Fraction(int(digits)), 0
    whole, frac = digits.split(".")
    return Fraction(int(whole + frac), 10 ** len(frac)), len(frac)


def _num_token(text: str, start: int, end: int, glued: bool = False) -> Tok:
    value, decimals = _number(text)
    return Tok("num", text, start, end, value, decimals, glued)


def tokenize(s: str) -> list[Tok]:
    """Tokenize normalised text (see :func:`normalize`) and classify its words."""
    toks: list[Tok] = []
    append = toks.append
    prev_end = -1
    plain = _PLAIN_KINDS
    for m in _TOKEN.finditer(s):
        kind = m.lastgroup or "punct"
        a, b = m.span(kind)
        glued = a == prev_end
        if kind in plain:
            prev_end = b
            append(Tok(kind, s[a:b], a, b, None, 0, glued))
            continue
        if kind == "space":
            continue
        prev_end = b
        text = s[a:b]
        if kind == "num" and ((len(text) > 1 and text[0] == "0" and text[1].isdigit())
                              or len(text) > MAX_NUMBER_CHARS):
            # 0900: a clock time or a code; or absurdly long
            append(Tok("poison", text, a, b, None, 0, glued))
        elif kind == "num":
            append(_num_token(text, a, b, glued))
        elif kind == "mixed" and max(map(len, _MIXED_PARTS.split(text))) > MAX_NUMBER_CHARS:
            # absurdly long: int() of it costs quadratic time
            append(Tok("poison", text, a, b, None, 0, glued))
        elif kind == "mixed":
            whole, frac = text.split()[0], text.split()[-1]
            n, d = frac.split("/")
            if int(d) == 0 or int(n) >= int(d):
                append(_num_token(whole, a, a + len(whole)))
                append(Tok("poison", frac, b - len(frac), b, None, 0, glued))
            else:
                append(Tok("num", f"{whole} {frac}", a, b, int(whole) + Fraction(int(n), int(d)),
                           0, glued))
        elif kind == "clock":
            append(Tok("poison", text, a, b, None, 0, glued))
        elif kind == "eq":
            append(Tok("eq", "=", a, b, None, 0, glued))
        else:  # pow
            append(Tok("op", "^", a, b, None, 0, glued))
    return _classify_words(_poison_calls(_drop_word_groups(_fix_glue(toks))))


def _poison_calls(toks: list[Tok]) -> list[Tok]:
    """"f(3)", "f (3)" and "(1/4)x" are a function and a variable, not arithmetic."""
    for i in range(1, len(toks)):
        b = toks[i]
        if b.kind == "lp":
            a = toks[i - 1]
            if a.kind == "word" and (b.glued or len(a.text) == 1):
                toks[i - 1] = Tok("poison", a.text + b.text, a.start, b.end)
        elif b.kind == "word" and b.glued:
            a = toks[i - 1]
            if a.kind == "rp":
                toks[i] = Tok("poison", a.text + b.text, a.start, b.end)
    return toks


def _fix_glue(toks: list[Tok]) -> list[Tok]:
    out: list[Tok] = []
    append = out.append
    for t in toks:
        kind = t.kind
        if out:
            prev = out[-1]
            pk = prev.kind
            if t.glued:
                if pk == "num":
                    if kind == "word":
                        if t.text.lower() in _ORDINAL or t.text not in GLUED_UNITS:
                            out[-1] = Tok("poison", prev.text + t.text, prev.start, t.end)
                            continue
                    elif t.text == "!" or kind == "num":
                        out[-1] = Tok("poison", prev.text + t.text, prev.start, t.end)
                        continue
                    elif kind == "lp":  # 2(3 + 4): implicit product
                        append(Tok("op", "*", t.start, t.start))
                elif pk == "rp" and (kind == "lp" or kind == "num"):
                    append(Tok("op", "*", t.start, t.start))
            if kind == "word" and pk == "num" and t.text.lower() in ("percent", "pct"):
                append(Tok("pct", "%", t.start, t.end))
                continue
        # a letter is never a digit: only a word with "_" or "'" or a digit is looked into
        if kind == "word" and not t.text.isalpha() and any(c.isdigit() for c in t.text):
            t = Tok("poison", t.text, t.start, t.end)
        append(t)
    return out


def _drop_word_groups(toks: list[Tok]) -> list[Tok]:
    """Remove parenthesised asides made only of words: "4 hours (travel time) + 6 hours"."""
    n = len(toks)
    out: list[Tok] = []
    pos = 0  # toks[pos:] is not copied yet; a dropped group holds no other "("
    for i in [i for i, t in enumerate(toks) if t.kind == "lp"]:
        j = i + 1
        while j < n and (toks[j].kind == "word" or (
            toks[j].kind == "punct" and toks[j].text in ",'\"-")):
            j += 1
        if j < n and j > i + 1 and toks[j].kind == "rp":
            out.extend(toks[pos:i])
            pos = j + 1
    if pos == 0:
        return toks
    out.extend(toks[pos:])
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
    skipped = False
    # operator words between quantities
    for i, t in enumerate(toks):
        if t.kind != "word" or i == 0 or i + 1 >= n:
            continue
        low = t.text.lower()
        if low not in _OP_TRIGGERS:
            continue
        nxt = toks[i + 1]
        if low in _OP_WORDS and nxt.kind in ("num", "lp") and _is_value_end(toks, i - 1):
            t.kind, t.text = "op", _OP_WORDS[low]
        elif low == "of" and nxt.kind in ("num", "lp") and _after_fraction_or_pct(toks, i - 1):
            t.kind = "op"
        elif (low, nxt.text.lower()) in _OP_WORD_PAIRS and i + 2 < n and toks[i + 2].kind in (
            "num", "lp") and _is_value_end(toks, i - 1):
            t.kind, t.text = "op", _OP_WORD_PAIRS[(low, nxt.text.lower())]
            nxt.kind, nxt.text = "skip", ""
            skipped = True
    if skipped:
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
