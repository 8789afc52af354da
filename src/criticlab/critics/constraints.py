"""Constraints of an instruction (DeCRIM): the :class:`Constraint` type and its text.

A :class:`Constraint` is one requirement of an instruction ("answer with at least 300
words"). Verifiable kinds have a checker in :mod:`criticlab.critics.constraint_checks` that
returns ``(ok, explanation)``, the explanation naming the measured value and the required
one; :func:`check` runs it. Any other kind (``"lm"`` or an unknown id) is checked by an LM;
see :mod:`criticlab.critics.decrim`. :func:`describe` writes a constraint in words.

Kinds and parameter names are IFEval's (google-research ``instruction_following_eval``), so
an IFEval row's ``instruction_id_list`` and ``kwargs`` map straight onto constraints; the
counting rules, and where they differ from IFEval's, are in
:mod:`criticlab.critics.constraint_checks`.

Kinds that are not IFEval's: ``startend:start_checker``, ``detectable_format:numbered_list``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from criticlab.critics.constraint_checks import CHECKERS, CONSTRAINED_OPTIONS, Check, quote_items

LM_KIND = "lm"
"""The kind of a constraint only an LM can check; its ``text`` says what to check."""


@dataclass(frozen=True)
class Constraint:
    """One requirement: ``kind`` (an IFEval id, or ``"lm"``), its ``params`` (IFEval's
    argument names) and ``text``, the requirement in words (what an LM or a refiner reads)."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def verifiable(self) -> bool:
        return self.kind in CHECKERS

    @classmethod
    def make(cls, kind: str, **params: Any) -> Constraint:
        """A constraint whose ``text`` is written from its kind and params."""
        return cls(kind, params, describe(kind, params))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params), "text": self.text}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Constraint:
        return cls(str(d["kind"]), dict(d.get("params") or {}), str(d.get("text", "")))


def check(constraint: Constraint, answer: str) -> Check:
    """Check one verifiable constraint. Raises ``ValueError`` for a kind without a checker or
    params a checker cannot use (a missing count, an unknown relation)."""
    checker = CHECKERS.get(constraint.kind)
    if checker is None:
        raise ValueError(f"no deterministic checker for kind {constraint.kind!r}")
    try:
        return checker(answer, constraint.params)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{constraint.kind}: bad params {constraint.params!r}: {e}") from e


_TEXT: dict[str, str] = {
    "length_constraints:number_words": "Answer with {relation} {num_words} words",
    "length_constraints:number_sentences": "Answer with {relation} {num_sentences} sentences",
    "length_constraints:number_paragraphs": "Write {relation} {num_paragraphs} paragraphs"
                                            "{separator}",
    "length_constraints:nth_paragraph_first_word":
        "Write {num_paragraphs} paragraphs; paragraph {nth_paragraph} starts with the word "
        "{first_word}",
    "keywords:existence": "Include the keywords {keywords}",
    "keywords:forbidden_words": "Do not use the words {forbidden_words}",
    "keywords:frequency": "Use the word {keyword} {relation} {frequency} times",
    "keywords:letter_frequency": "Use the letter {letter} {let_relation} {let_frequency} times",
    "change_case:english_lowercase": "Write the whole answer in lowercase letters",
    "change_case:english_capital": "Write the whole answer in capital letters",
    "change_case:capital_word_frequency":
        "Use all-capital words {capital_relation} {capital_frequency} times",
    "detectable_format:json_format": "The whole answer is valid JSON",
    "detectable_format:number_bullet_lists": "Use {relation} {num_bullets} markdown bullet "
                                             "points",
    "detectable_format:numbered_list": "Use a numbered list{num_items}",
    "detectable_format:title": "Include a title wrapped in double angular brackets, "
                               "like <<title>>",
    "detectable_format:number_highlighted_sections":
        "Highlight {relation} {num_highlights} sections with markdown, like *this*",
    "detectable_format:multiple_sections":
        "Write {relation} {num_sections} sections, each starting with '{section_spliter} X'",
    "detectable_format:constrained_response": "Answer with one of the options {options}",
    "startend:end_checker": "End the answer with the exact phrase {end_phrase}",
    "startend:start_checker": "Start the answer with the phrase {starter}",
    "startend:quotation": "Wrap the whole answer in double quotation marks",
    "punctuation:no_comma": "Do not use any commas",
    "detectable_content:number_placeholders":
        "Include {relation} {num_placeholders} placeholders in square brackets, like [name]",
    "detectable_content:postscript": "End with a postscript starting with {postscript_marker}",
    "combination:two_responses": "Give two different responses separated by ******",
    "combination:repeat_prompt": "First repeat the request word for word, then answer",
    "language:response_language": "Write the whole answer in {language}",
}

_DEFAULTS = {
    "relation": "exactly", "separator": "", "section_spliter": "Section",
    "postscript_marker": "P.S.", "num_items": "",
    "options": quote_items(list(CONSTRAINED_OPTIONS)),
    "capital_relation": "at least", "let_relation": "at least",
}
_DEFAULT_RELATION = {
    "length_constraints:number_words": "at least", "length_constraints:number_sentences":
    "at least", "keywords:frequency": "at least", "detectable_format:multiple_sections":
    "at least", "detectable_format:number_highlighted_sections": "at least",
    "detectable_content:number_placeholders": "at least",
}


def describe(kind: str, params: Mapping[str, Any]) -> str:
    """The constraint in words, from its kind and params (the kind itself when unknown)."""
    values: dict[str, Any] = {**_DEFAULTS, "relation": _DEFAULT_RELATION.get(kind, "exactly")}
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, list | tuple):
            v = quote_items([str(x) for x in v])
        elif k in ("end_phrase", "starter", "keyword", "letter", "first_word"):
            v = repr(v)
        values[k] = v
    if params.get("separator"):
        values["separator"] = f" separated by {params['separator']}"
    elif kind == "length_constraints:number_paragraphs":
        values["separator"] = " separated by blank lines" if "separator" in params else \
            " separated by ***"
    if params.get("num_items") is not None:
        rel = params.get("relation") or "exactly"
        values["num_items"] = f" of {rel} {params['num_items']} items"
    try:
        return _TEXT[kind].format_map(values)
    except (KeyError, IndexError):
        return kind
