"""Pattern extraction of constraints from an instruction, for DeCRIM's decomposition step
(Ferraz et al. 2024, "LLM Self-Correction with DeCRIM: Decompose, Critique, and Refine for
Enhanced Following of Instructions with Multiple Constraints").

:func:`constraints_from_instruction` finds the common verifiable constraints of
:mod:`criticlab.critics.constraints` with plain patterns, no model needed. It reads plain
phrasings ("at least 300 words", "in all lowercase letters", "Do not include keywords
['a', 'b']"); anything vaguer is left to the LM decomposition in
:mod:`criticlab.critics.decrim`.
"""

from __future__ import annotations

import re
from typing import Any

from criticlab.critics.constraints import Constraint

_NUMBER_WORDS = {w: i for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
))}
_NUMBER_WORDS.update(thirty=30, forty=40, fifty=50, hundred=100)
_ORDINALS = {w: i + 1 for i, w in enumerate((
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
))}
_NUM = r"\b(\d+|" + "|".join(_NUMBER_WORDS) + r")\b"
_REL_WORDS = {
    "at least": "at least", "no less than": "at least", "no fewer than": "at least",
    "not less than": "at least", "a minimum of": "at least", "minimum of": "at least",
    "at minimum": "at least",
    "at most": "at most", "no more than": "at most", "not more than": "at most",
    "a maximum of": "at most", "maximum of": "at most", "up to": "at most",
    "not exceeding": "at most", "not exceed": "at most", "within": "at most",
    "less than": "less than", "fewer than": "less than", "under": "less than",
    "below": "less than",
    "more than": "more than", "over": "more than", "above": "more than",
    "greater than": "more than", "exceeding": "more than",
    "exactly": "exactly", "precisely": "exactly",
}
_REL = r"(" + "|".join(w.replace(" ", r"\s+") for w in
                       sorted(_REL_WORDS, key=len, reverse=True)) + r")"
# Words after which a bare "N words" means exactly N ("in 3 sentences", "be 2 paragraphs").
_BARE = frozenset((
    "", "in", "with", "of", "be", "have", "has", "contain", "contains", "containing", "write",
    "use", "using", "give", "answer", "respond", "are", "is", "into", "only", "just", "total",
    "there", "should", "must", "the", "and",
))
_APPROX = r"(?:(about|around|approximately|roughly|nearly|almost|some|~)\s+)?"
_QUOTED = r"\"([^\"\n]+)\"|“([^”\n]+)”|'([^'\n]+)'(?=[\s.,;:!?)\]]|$)|‘([^’\n]+)’"
_Q = r"[\"'“”‘’]?"
_LANGUAGES = (
    "English", "Spanish", "Portuguese", "Arabic", "Hindi", "French", "Russian", "German",
    "Japanese", "Italian", "Bengali", "Ukrainian", "Thai", "Urdu", "Tamil", "Telugu", "Bulgarian",
    "Korean", "Polish", "Hebrew", "Persian", "Vietnamese", "Nepali", "Swahili", "Kannada",
    "Marathi", "Gujarati", "Punjabi", "Malayalam", "Finnish", "Chinese", "Dutch", "Swedish",
    "Greek", "Turkish",
)
_FLAGS = re.IGNORECASE


def _num(s: str) -> int:
    s = s.lower()
    return int(s) if s.isdigit() else _NUMBER_WORDS.get(s, _ORDINALS.get(s, 0))


def _rel(s: str | None, default: str) -> str:
    return _REL_WORDS[re.sub(r"\s+", " ", s.lower())] if s else default


def _first_quoted(m: re.Match[str]) -> str:
    return next(g for g in m.groups() if g is not None)


class _Text:
    """The instruction being read; a matched span is blanked so no later pattern reads it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def take(self, pattern: str) -> list[re.Match[str]]:
        matches = list(re.finditer(pattern, self.text, _FLAGS))
        for m in matches:
            self.blank(m.start(), m.end())
        return matches

    def blank(self, start: int, end: int) -> None:
        self.text = self.text[:start] + " " * (end - start) + self.text[end:]

    def has(self, pattern: str) -> bool:
        return re.search(pattern, self.text, _FLAGS) is not None


def _items(rest: str) -> tuple[list[str], int]:
    """Words or phrases listed right after "include the keywords": a ``[...]`` list, quoted
    items, or plain words up to the end of the clause; and how many characters they take."""
    lead = len(rest) - len(rest.lstrip(" :"))
    rest = rest[lead:]
    if rest.startswith("["):
        end = rest.find("]") if "]" in rest else len(rest)
        inner = rest[1:end]
        quoted = [_first_quoted(m) for m in re.finditer(_QUOTED, inner)]
        return quoted or [s.strip() for s in inner.split(",") if s.strip()], lead + end + 1
    run = re.match(rf"(?:\s*(?:,|\band\b|\bor\b|&)?\s*(?:{_QUOTED}))+", rest)
    if run:
        return [_first_quoted(m) for m in re.finditer(_QUOTED, run.group())], lead + run.end()
    clause = re.split(r"\s+(?:in|into|within|throughout|anywhere|at)\s+(?:the|your|least)\b"
                      r"|[.;:\n!?(]|\s+(?:when|while|if|so|but)\b", rest, maxsplit=1)[0]
    words = [w.strip(" *") for w in re.split(r",|\band\b|\bor\b|&", clause)]
    stop = re.compile(r"^(?:of|that|which|from|you|your|in|to|the|a|an|any|it)\b", _FLAGS)
    return [w for w in words if w and len(w.split()) <= 3 and not stop.match(w)], \
        lead + len(clause)


def _count(t: _Text, unit: str) -> list[tuple[str, int]]:
    """(relation, n) for "<relation> N <unit>", "between A and B <unit>", "N <unit> or less"."""
    out = []
    for m in t.take(rf"\bbetween\s+{_NUM}\s+and\s+{_NUM}\s+{unit}"):
        out += [("at least", _num(m.group(1))), ("at most", _num(m.group(2)))]
    for m in t.take(rf"{_NUM}\s*\+\s*-?\s*{unit}"):  # "a 300+ word essay"
        out.append(("at least", _num(m.group(1))))
    pattern = (rf"\b{_APPROX}(?:{_REL}\s+)?{_NUM}\s+{unit}"
               r"(?:\s+(?:or|and)\s+(less|fewer|more|under|over|below|above))?")
    for m in t.take(pattern):
        if m.group(1):  # "about 300 words": not a hard limit, left to the LM
            continue
        before = re.search(r"(\w*)\W*$", t.text[:m.start()])
        if not (m.group(2) or m.group(4)) and before and before.group(1).lower() not in _BARE:
            continue  # "exceed 40 words", "like 3 sentences": a relation we cannot read
        tail = (m.group(4) or "").lower()
        rel = "at most" if tail in ("less", "fewer", "under", "below") else \
            "at least" if tail in ("more", "over", "above") else _rel(m.group(2), "exactly")
        out.append((rel, _num(m.group(3))))
    return out


def constraints_from_instruction(text: str) -> list[Constraint]:
    """The verifiable constraints (and a few LM-checked ones with known params, such as the
    response language) that plain patterns find in ``text``. Finds nothing it is unsure of:
    vague wording ("about 300 words", "keep it short") is left to an LM decomposition."""
    t, out = _Text(text), []

    def add(kind: str, **params: Any) -> None:
        c = Constraint.make(kind, **params)
        if c not in out:
            out.append(c)

    caps = (r"(?:words?\s+(?:with|in|using)\s+all\s+(?:capital(?:\s+letters)?|caps|upper\s*-?case"
            r"(?:\s+letters)?)|all[- ]caps\s+words|(?:fully\s+)?capitali[sz]ed\s+words"
            r"|words\s+in\s+capital\s+letters|capital\s+words)")
    for m in t.take(rf"{caps}[^.\n]{{0,40}}?{_REL}\s+{_NUM}\s+times?"):
        add("change_case:capital_word_frequency", capital_frequency=_num(m.group(2)),
            capital_relation=_rel(m.group(1), "at least"))
    for m in t.take(rf"{_REL}\s+{_NUM}\s+{caps}"):
        add("change_case:capital_word_frequency", capital_frequency=_num(m.group(2)),
            capital_relation=_rel(m.group(1), "at least"))
    for m in t.take(rf"\bletter\s+{_Q}([a-z]){_Q}(?![\w.])[^.\n]{{0,40}}?{_REL}\s+{_NUM}\s+times?"):
        add("keywords:letter_frequency", letter=m.group(1).lower(),
            let_frequency=_num(m.group(3)), let_relation=_rel(m.group(2), "at least"))
    word = rf"\bword\s+(?:{_QUOTED}|([\w'-]+))"
    for m in t.take(rf"{word}[^.\n]{{0,40}}?\b(?:{_REL}\s+)?{_NUM}\s+times?"):
        add("keywords:frequency", keyword=_first_quoted(m), frequency=_num(m.group(7)),
            relation=_rel(m.group(6), "exactly"))
    parts = r"(?:sections?|parts?|phrases?|words?|passages?|points?|sentences?)"
    for m in [*t.take(rf"\bhighlight\w*\s+(?:{_REL}\s+)?{_NUM}\s+(?:\w+\s+)?{parts}"),
              *t.take(rf"(?:{_REL}\s+)?{_NUM}\s+highlighted\s+{parts}")]:
        add("detectable_format:number_highlighted_sections", num_highlights=_num(m.group(2)),
            relation=_rel(m.group(1), "at least"))
    marker = re.search(r"(?:mark|begin|start)\s+(?:the\s+beginning\s+of\s+)?each\s+section\s+"
                       rf"with\s+{_Q}(\w+)\s+(?:X|N|\d|\{{|\[)", t.text, _FLAGS)
    if marker:
        for rel, n in _count(t, r"sections?\b"):
            add("detectable_format:multiple_sections", section_spliter=marker.group(1),
                num_sections=n, relation="at least" if rel == "exactly" else rel)
    nth = t.take(rf"(?:\bparagraph\s+{_NUM}|\b({'|'.join(_ORDINALS)})\s+paragraph)\s+(?:must|"
                 rf"should|has\s+to|needs\s+to|will)\s+(?:start|begin)\s+with\s+(?:the\s+)?"
                 rf"word\s+{_Q}(\w+)")
    paragraphs = _count(t, r"paragraphs?\b")
    if nth and paragraphs:
        m = nth[0]
        add("length_constraints:nth_paragraph_first_word", num_paragraphs=paragraphs[0][1],
            nth_paragraph=_num(m.group(1) or m.group(2)), first_word=m.group(3).lower())
    else:
        sep = "***" if "***" in text or t.has(r"markdown\s+divider") else None
        for rel, n in paragraphs:
            add("length_constraints:number_paragraphs", num_paragraphs=n, relation=rel,
                separator=sep)
    not_caps = r"(?!\s+(?:with|in|using)\s+(?:all\s+)?(?:capital|caps|upper))"
    for rel, n in _count(t, rf"words?\b{not_caps}"):
        add("length_constraints:number_words", num_words=n, relation=rel)
    for rel, n in _count(t, r"sentences?\b"):
        add("length_constraints:number_sentences", num_sentences=n, relation=rel)
    for rel, n in _count(t, r"(?:markdown\s+)?bullet(?:\s*-?\s*points?|s|ed\s+items?)?\b"):
        add("detectable_format:number_bullet_lists", num_bullets=n, relation=rel)
    for rel, n in _count(t, r"placeholders?\b"):
        add("detectable_content:number_placeholders", num_placeholders=n,
            relation="at least" if rel == "exactly" else rel)
    if not any(c.kind == "detectable_content:number_placeholders" for c in out) and t.has(
            r"\bplaceholders?\b"):
        add("detectable_content:number_placeholders", num_placeholders=1, relation="at least")
    _keywords(t, add)
    _formats(text, t, add)
    return out


def _keywords(t: _Text, add: Any) -> None:
    noun = r"(?:the\s+|these\s+|following\s+)*(?:key\s*)?(?:words?|terms?|phrases?)\b\s*:?"
    verb = (r"(?:include|including|use|using|mention|mentioning|say|saying|contain|containing|"
            r"the\s+use\s+of|write|writing)")
    neg = r"(?:do\s+not|don't|never|avoid|without|refrain\s+from|must\s+not|should\s+not)"
    pos = r"(?:include|use|mention|contain|incorporate|feature)(?:s|d)?"
    for kind, key, trigger in (
        ("keywords:forbidden_words", "forbidden_words",
         rf"\b{neg}\s+(?:{verb}\s+)?(?:any\s+(?:of\s+)?)?{noun}"),
        ("keywords:existence", "keywords", rf"\b{pos}\s+{noun}"),
    ):
        for m in t.take(trigger):
            words, used = _items(t.text[m.end():])
            t.blank(m.end(), m.end() + used)
            if words:
                add(kind, **{key: words})


def _formats(original: str, t: _Text, add: Any) -> None:
    """Kinds without a count: case, JSON, title, quotes, commas, start/end phrases, ..."""
    if t.has(r"(?:\bin|\busing|\buse|\bonly|\bentirely\s+in)\s+(?:only\s+)?(?:all\s+)?"
             r"lower\s*-?\s*case|no\s+capital\s+letters|lower\s*-?\s*case\s+(?:letters\s+)?only"):
        add("change_case:english_lowercase")
    if t.has(r"(?:\bin|\busing|\buse|\bentirely\s+in)\s+"
             r"(?:english[,]?\s+(?:and\s+)?(?:in\s+)?)?all\s+"
             r"(?:capital(?:\s+letters)?|caps|upper\s*-?\s*case)|\ball[- ]caps\b|"
             r"upper\s*-?\s*case\s+(?:letters\s+)?only|\bentirely\s+in\s+(?:capital|upper)"):
        add("change_case:english_capital")
    if t.has(r"(?:\bin|(?<!such )\bas|\busing|\bvalid|\boutput|\breturn|\brespond\s+with|"
             r"\banswer\s+with)\s+(?:a\s+|an\s+|only\s+|valid\s+|the\s+|in\s+)*json\b"):
        add("detectable_format:json_format")
    if t.has(r"double\s+angul?ar\s+brackets|double\s+angle\s+brackets|<<[^<>\n]+>>"):
        add("detectable_format:title")
    if t.has(r"(?:wrap|enclose|surround|put)\w*\s+[^.\n]{0,40}?(?:in|with|within|inside)\s+"
             r"double\s+quot(?:ation\s+marks|es)"):
        add("startend:quotation")
    if t.has(r"(?:\bno\b|\bwithout\b|refrain\s+from|\bavoid|(?:do\s+not|don't|never|not)\s+"
             r"(?:use|include))[^.\n]{0,30}?\bcommas?\b"):
        add("punctuation:no_comma")
    if t.has(r"\bpostscript\b|\bP\.\s?P\.\s?S\b|\bP\.\s?S\.(?!\w)"):
        add("detectable_content:postscript",
            postscript_marker="P.P.S" if t.has(r"P\.\s?P\.\s?S") else "P.S.")
    if t.has(r"two\s+different\s+(?:responses|answers)|separated\s+by\s+6\s+asterisk|\*{6}"):
        add("combination:two_responses")
    options = re.search(r"one\s+of\s+the\s+following\s+options\s*:?(.*)", original, _FLAGS)
    listed = [_first_quoted(m) for m in re.finditer(_QUOTED, options.group(1))] if options \
        else []
    if listed:
        add("detectable_format:constrained_response", options=listed)
    elif t.has(r"My\s+answer\s+is\s+(?:yes|no|maybe)"):
        add("detectable_format:constrained_response")
    if t.has(r"\bnumbered\s+list"):
        m = re.search(rf"{_NUM}\s*-?\s*(?:item|point|step)s?\s+numbered\s+list|numbered\s+list\s+"
                      rf"(?:of|with)\s+(?:exactly\s+)?{_NUM}\s+(?:items|points|steps|entries)",
                      t.text, _FLAGS)
        n = _num(m.group(1) or m.group(2)) if m else None
        add("detectable_format:numbered_list", **({} if n is None else {"num_items": n}))
    _start_end(t, add)
    lang = "|".join(_LANGUAGES)
    m = re.search(rf"(?i:response|answer|output|reply|respond|write)\s+(?:\w+\s+){{0,3}}?"
                  rf"in\s+({lang})(?:\s+language|,?\s+no\s+other|\s+only|\b)", t.text)
    if m and not (m.group(1) == "English" and t.has(r"all\s+(?:lower|capital|caps|upper)")):
        add("language:response_language", language=m.group(1))


def _start_end(t: _Text, add: Any) -> None:
    what = r"(?:your\s+(?:entire\s+|whole\s+)?\w+\s+|it\s+|the\s+\w+\s+)?"
    lead = r"(?:the\s+|this\s+)?(?:exact\s+|following\s+)?(?:phrase|sentence|words?|question)?"
    for m in t.take(rf"\b(?:finish|end|conclude|close)\s+{what}with\s+{lead}\s*:?\s*(?:{_QUOTED}"
                    r"|(.+?(?:[?!.](?=\s|\Z)|(?=[ \t]*(?:\n|\Z)))))"):
        phrase = _first_quoted(m).strip()
        if m.group(5) is not None:  # unquoted: "…with?. No other words" keeps the "?"
            phrase = re.sub(r"([?!])\.$", r"\1", phrase)
        if phrase and not re.match(r"(?:a|an|the|your|some|one)\b", phrase, _FLAGS):
            add("startend:end_checker", end_phrase=phrase)
    for m in t.take(rf"\b(?:start|begin|open)\s+{what}with\s+{lead}\s*:?\s*(?:{_QUOTED})"):
        add("startend:start_checker", starter=_first_quoted(m).strip())
    for m in t.take(rf"\b(?:start|begin|open)\s+{what}with\s+the\s+word\s+(\w+)"):
        add("startend:start_checker", starter=m.group(1))
