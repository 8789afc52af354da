"""Deterministic checkers for the verifiable constraint kinds (DeCRIM).

Each checker takes the answer and a constraint's params and returns ``(ok, explanation)``, the
explanation naming the measured value and the required one; :data:`CHECKERS` maps a kind to
its checker (:func:`criticlab.critics.constraints.check` dispatches a
:class:`~criticlab.critics.constraints.Constraint` to it).

The counting rules are IFEval's: words are ``\\w+`` tokens; ``***``-separated paragraphs;
bullets are lines starting with ``*`` or ``-``; highlights are ``*text*`` or ``**text**``;
placeholders are ``[...]``; JSON may sit in a code fence. Deliberate differences:

- sentences are counted by a regex splitter (terminal ``.!?`` followed by whitespace,
  abbreviations, initials and decimals protected) instead of NLTK's punkt model;
- keywords (required, forbidden, frequency) match whole words and phrases, case-insensitive
  (IFEval's required keywords match any substring);
- all-lowercase / all-capitals check the case only, not the language (no langdetect);
- the start phrase must open the answer (IFEval's dormant start check accepts any line);
- relations are "at least", "at most", "less than", "more than", "exactly" (IFEval has the
  first and third), and paragraphs may also be blank-line separated (``separator: None``).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

Check = tuple[bool, str]
Checker = Callable[[str, Mapping[str, Any]], Check]

# -- counting ---------------------------------------------------------------------------------
_RELATIONS: dict[str, Callable[[int, int], bool]] = {
    "at least": operator.ge, "at most": operator.le, "less than": operator.lt,
    "more than": operator.gt, "exactly": operator.eq,
}
RELATIONS = tuple(_RELATIONS)


def _compare(n: int, p: Mapping[str, Any], key: str, rel_key: str, default: str,
             unit: str) -> Check:
    target = int(p[key])
    rel = str(p.get(rel_key) or default).strip().lower()
    if rel not in _RELATIONS:
        raise ValueError(f"unknown relation {rel!r}; use one of {RELATIONS}")
    return _RELATIONS[rel](n, target), f"{n} {unit}; required {rel} {target}"


def count_words(text: str) -> int:
    """IFEval's word count: ``\\w+`` tokens ("don't" is two words)."""
    return len(re.findall(r"\w+", text))


_ABBREVIATIONS = frozenset((
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc", "ltd",
    "co", "no", "fig", "approx", "cf", "al",
))
_TERMINAL = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")


def split_sentences(text: str) -> list[str]:
    """Sentences: a run of ``.!?`` (closing quotes/brackets allowed) followed by whitespace or
    the end ends one, unless the word before a single ``.`` is an abbreviation, an initial or
    an acronym ("Dr.", "J.", "U.S."). A final piece without punctuation is a sentence too."""
    out, start = [], 0
    for m in _TERMINAL.finditer(text):
        if m.group().startswith(".") and not m.group().startswith(".."):
            word = re.search(r"([\w.]+)$", text[start:m.start()])
            w = word.group(1).lower() if word else ""
            if w in _ABBREVIATIONS or re.fullmatch(r"[a-z]|(?:[a-z]\.)+[a-z]", w):
                continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if re.search(r"\w", s)]


def _paragraphs(text: str, separator: str | None) -> tuple[list[str], bool]:
    """Paragraphs, and whether an empty one sits between two separators (IFEval: a fail)."""
    if separator is None:
        return [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()], False
    parts = re.split(r"\s?" + re.escape(separator) + r"\s?", text)
    inner_empty = any(not s.strip() for s in parts[1:-1])
    return [s for s in parts if s.strip()], inner_empty


def _word_re(phrase: str) -> re.Pattern[str]:
    body = r"\s+".join(re.escape(t) for t in phrase.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _words_param(p: Mapping[str, Any], key: str) -> list[str]:
    v = p[key]
    return [v] if isinstance(v, str) else [str(w) for w in v]


def quote_items(items: list[str]) -> str:
    """``'a', 'b'``: the items as Python reprs, comma separated."""
    return ", ".join(repr(w) for w in items)


# -- checkers ---------------------------------------------------------------------------------
def _number_words(a: str, p: Mapping[str, Any]) -> Check:
    return _compare(count_words(a), p, "num_words", "relation", "at least", "words")


def _number_sentences(a: str, p: Mapping[str, Any]) -> Check:
    n = len(split_sentences(a))
    return _compare(n, p, "num_sentences", "relation", "at least", "sentences")


def _number_paragraphs(a: str, p: Mapping[str, Any]) -> Check:
    sep = p.get("separator", "***")
    paras, inner_empty = _paragraphs(a, sep)
    unit = "paragraphs" + (f" separated by {sep}" if sep else " separated by blank lines")
    ok, why = _compare(len(paras), p, "num_paragraphs", "relation", "exactly", unit)
    if inner_empty:
        return False, why + f"; an empty paragraph sits between two {sep} separators"
    return ok, why


def _nth_paragraph_first_word(a: str, p: Mapping[str, Any]) -> Check:
    paras = [s for s in a.split("\n\n") if s.strip()]
    n, nth, want = int(p["num_paragraphs"]), int(p["nth_paragraph"]), str(p["first_word"])
    first = ""
    if nth <= len(paras):
        word = paras[nth - 1].split()[0].lstrip("'\"")
        first = re.split(r"[.,?!'\"]", word)[0].lower()
    ok = len(paras) == n and first == want.lower()
    return ok, (f"{len(paras)} paragraphs, paragraph {nth} starts with {first!r}; required "
                f"{n} paragraphs and paragraph {nth} starting with {want.lower()!r}")


def _existence(a: str, p: Mapping[str, Any]) -> Check:
    words = _words_param(p, "keywords")
    missing = [w for w in words if not _word_re(w).search(a)]
    why = f"{len(words) - len(missing)} of {len(words)} required keywords present"
    return not missing, why + (f"; missing {quote_items(missing)}" if missing else "")


def _forbidden(a: str, p: Mapping[str, Any]) -> Check:
    words = _words_param(p, "forbidden_words")
    found = {w: len(_word_re(w).findall(a)) for w in words}
    used = [f"{w!r} {n}x" for w, n in found.items() if n]
    if used:
        return False, f"forbidden words used: {', '.join(used)}; required 0 occurrences"
    return True, f"none of {len(words)} forbidden words used ({quote_items(words)})"


def _keyword_frequency(a: str, p: Mapping[str, Any]) -> Check:
    kw = str(p["keyword"])
    n = len(_word_re(kw).findall(a))
    return _compare(n, p, "frequency", "relation", "at least", f"occurrences of {kw!r}")


def _letter_frequency(a: str, p: Mapping[str, Any]) -> Check:
    letter = str(p["letter"]).strip().lower()
    n = a.lower().count(letter)
    return _compare(n, p, "let_frequency", "let_relation", "at least",
                    f"occurrences of the letter {letter!r}")


def _lowercase(a: str, p: Mapping[str, Any]) -> Check:
    upper = [c for c in a if c.isupper()]
    if a.islower():
        return True, "0 uppercase letters; required 0"
    if not upper:
        return False, "the answer has no letters; required all-lowercase text"
    return False, f"{len(upper)} uppercase letters (first {upper[0]!r}); required 0"


def _capital(a: str, p: Mapping[str, Any]) -> Check:
    lower = [c for c in a if c.islower()]
    if a.isupper():
        return True, "0 lowercase letters; required 0"
    if not lower:
        return False, "the answer has no letters; required all-capital text"
    return False, f"{len(lower)} lowercase letters (first {lower[0]!r}); required 0"


def _capital_word_frequency(a: str, p: Mapping[str, Any]) -> Check:
    n = sum(w.isupper() for w in re.findall(r"\w+(?:[-'’]\w+)*", a))  # hyphenated = one word
    return _compare(n, p, "capital_frequency", "capital_relation", "at least",
                    "all-capital words")


def _json(a: str, p: Mapping[str, Any]) -> Check:
    body = a.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        body = body.removeprefix(fence)
    body = body.removesuffix("```").strip()
    try:
        value = json.loads(body)
    except ValueError as e:
        where = f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) \
            else ""
        msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
        return False, f"not valid JSON: {msg}{where}; required the whole answer to be JSON"
    return True, f"valid JSON ({type(value).__name__})"


def _bullets(a: str, p: Mapping[str, Any]) -> Check:
    n = len(re.findall(r"^\s*\*[^\*].*$", a, re.MULTILINE)) + len(
        re.findall(r"^\s*-.*$", a, re.MULTILINE))
    return _compare(n, p, "num_bullets", "relation", "exactly", "bullet points")


def _numbered_list(a: str, p: Mapping[str, Any]) -> Check:
    n = len(re.findall(r"^\s*\d+[.)]\s+\S", a, re.MULTILINE))
    if p.get("num_items") is None:
        return _compare(n, {"n": 1}, "n", "-", "at least", "numbered items")
    return _compare(n, p, "num_items", "relation", "exactly", "numbered items")


def _title(a: str, p: Mapping[str, Any]) -> Check:
    titles = [t for t in re.findall(r"<<[^\n]+>>", a) if t.lstrip("<").rstrip(">").strip()]
    if titles:
        return True, f"title found: {titles[0]}"
    return False, "no title in <<double angular brackets>>; required one"


def _highlights(a: str, p: Mapping[str, Any]) -> Check:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", a) if h.strip("*").strip()]
    double = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", a) if h.strip("*").strip()]
    return _compare(len(single) + len(double), p, "num_highlights", "relation", "at least",
                    "highlighted sections")


def _sections(a: str, p: Mapping[str, Any]) -> Check:
    spliter = str(p.get("section_spliter") or "Section").strip()
    n = len(re.split(r"\s?" + re.escape(spliter) + r"\s?\d+\s?", a)) - 1
    return _compare(n, p, "num_sections", "relation", "at least", f"'{spliter} X' sections")


def _end(a: str, p: Mapping[str, Any]) -> Check:
    phrase = str(p["end_phrase"]).strip()
    body = a.strip().strip('"')
    ok = body.lower().endswith(phrase.lower())
    tail = body[-(len(phrase) + 10):] if body else ""
    return ok, f"ends with {tail!r}; required to end with {phrase!r}"


def _start(a: str, p: Mapping[str, Any]) -> Check:
    phrase = str(p["starter"]).strip()
    body = a.lstrip().lstrip('"')
    ok = body.lower().startswith(phrase.lower())
    return ok, f"starts with {body[:len(phrase) + 10]!r}; required to start with {phrase!r}"


def _quotation(a: str, p: Mapping[str, Any]) -> Check:
    body = a.strip()
    ok = len(body) > 1 and body[0] == '"' and body[-1] == '"'
    return ok, f"opens with {body[:1]!r} and closes with {body[-1:]!r}; required '\"' at both ends"


def _no_comma(a: str, p: Mapping[str, Any]) -> Check:
    n = a.count(",")
    return n == 0, f"{n} commas; required 0"


def _placeholders(a: str, p: Mapping[str, Any]) -> Check:
    n = len(re.findall(r"\[.*?\]", a))
    return _compare(n, p, "num_placeholders", "relation", "at least", "[placeholders]")


def _postscript(a: str, p: Mapping[str, Any]) -> Check:
    marker = str(p.get("postscript_marker") or "P.S.").strip()
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + re.escape(marker.lower()) + r".*$"
    ok = bool(re.findall(pattern, a.lower(), flags=re.MULTILINE))
    return ok, f"postscript starting with {marker!r} {'found' if ok else 'not found'}"


def _two_responses(a: str, p: Mapping[str, Any]) -> Check:
    parts = a.split("******")
    if any(not s.strip() for s in parts[1:-1]):
        return False, "an empty response between two ****** separators; required 2 responses"
    valid = [s.strip() for s in parts if s.strip()]
    ok = len(valid) == 2 and valid[0] != valid[1]
    same = " (identical)" if len(valid) == 2 and not ok else ""
    return ok, f"{len(valid)} responses separated by ******{same}; required 2 different"


CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def _constrained_response(a: str, p: Mapping[str, Any]) -> Check:
    options = _words_param(p, "options") if p.get("options") else list(CONSTRAINED_OPTIONS)
    hit = next((o for o in options if o in a.strip()), None)
    if hit:
        return True, f"contains the option {hit!r}"
    return False, f"contains none of the options {quote_items(options)}"


def _repeat_prompt(a: str, p: Mapping[str, Any]) -> Check:
    prompt = str(p["prompt_to_repeat"]).strip()
    ok = a.strip().lower().startswith(prompt.lower())
    return ok, f"the request is {'' if ok else 'not '}repeated word for word at the start"


CHECKERS: dict[str, Checker] = {
    "length_constraints:number_words": _number_words,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "keywords:existence": _existence,
    "keywords:forbidden_words": _forbidden,
    "keywords:frequency": _keyword_frequency,
    "keywords:letter_frequency": _letter_frequency,
    "change_case:english_lowercase": _lowercase,
    "change_case:english_capital": _capital,
    "change_case:capital_word_frequency": _capital_word_frequency,
    "detectable_format:json_format": _json,
    "detectable_format:number_bullet_lists": _bullets,
    "detectable_format:numbered_list": _numbered_list,
    "detectable_format:title": _title,
    "detectable_format:number_highlighted_sections": _highlights,
    "detectable_format:multiple_sections": _sections,
    "detectable_format:constrained_response": _constrained_response,
    "startend:end_checker": _end,
    "startend:start_checker": _start,
    "startend:quotation": _quotation,
    "punctuation:no_comma": _no_comma,
    "detectable_content:number_placeholders": _placeholders,
    "detectable_content:postscript": _postscript,
    "combination:two_responses": _two_responses,
    "combination:repeat_prompt": _repeat_prompt,
}
