"""Model text -> verdicts. Nothing here raises on model output: a text that cannot be read
gives ``parsed=False`` with the text kept in ``raw``; it is never read as "correct".

Each free-text format has, next to its parser, the JSON schema of its structured form and
the reader of a reply that follows it (``--structured``; see
:class:`~criticlab.critics.template.TemplateCritic`). :func:`fit` (:func:`char_limit`) is the
one rule that bounds the free texts of every such schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from criticlab.critics.base import first_incorrect
from criticlab.types import Critique, Overall, StepVerdict, Verdict

# -- the structured form of a reply: schema helpers and the length rule -------------------------
STRING_CHARS_PER_TOKEN = 1
"""The worst case of free text: a model that degenerates ("1.1.1.1...") writes a token per
character."""
SKELETON_CHARS_PER_TOKEN = 2
"""Keys, punctuation and enum values, copied from the schema in the prompt."""
MARGIN_TOKENS = 16
"""Left over for whitespace between the fields."""
MIN_CHARS = 20


def char_limit(max_tokens: int, strings: int = 1, skeleton_chars: int = 0) -> int:
    """The ``maxLength`` of each of ``strings`` free texts of a JSON reply of at most
    ``max_tokens`` tokens whose skeleton (the reply with every string empty) takes
    ``skeleton_chars`` characters: the texts share equally what the skeleton (at
    :data:`SKELETON_CHARS_PER_TOKEN`) and :data:`MARGIN_TOKENS` leave, at
    :data:`STRING_CHARS_PER_TOKEN`, so that even a degenerate reply closes its JSON before
    ``max_tokens`` (a grammar makes the model close a string at its bound). Never under
    :data:`MIN_CHARS`: a budget too small for the solution's steps is overrun rather than
    leaving a verdict no room for its reason."""
    skeleton_tokens = -(-skeleton_chars // SKELETON_CHARS_PER_TOKEN)
    room = (max_tokens - MARGIN_TOKENS - skeleton_tokens) * STRING_CHARS_PER_TOKEN
    return max(MIN_CHARS, room // max(strings, 1))


def skeleton(schema: Mapping[str, Any]) -> tuple[int, int]:
    """(characters, strings) of the longest compact reply to ``schema`` with every string
    empty: an array counts at its ``maxItems``, an enum at its longest value."""
    if "enum" in schema:
        return max(len(json.dumps(v, ensure_ascii=False)) for v in schema["enum"]), 0
    kind = schema.get("type")
    if kind == "string":
        return 2, 1
    if kind == "object":
        props = schema.get("properties", {})
        chars, strings = 2 + max(len(props) - 1, 0), 0
        for key, value in props.items():
            c, n = skeleton(value)
            chars += len(json.dumps(key, ensure_ascii=False)) + 1 + c
            strings += n
        return chars, strings
    if kind == "array":
        count = int(schema.get("maxItems", schema.get("minItems", 1)))
        c, n = skeleton(schema.get("items", {}))
        return 2 + count * c + max(count - 1, 0), count * n
    return 5, 0  # a number or a boolean


def fit(schema: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """``schema`` with the ``maxLength`` of :func:`char_limit` on each of its strings: the
    one length rule of every structured critic."""
    chars, strings = skeleton(schema)
    return _bounded(schema, char_limit(max_tokens, strings, chars))


def _bounded(schema: Any, limit: int) -> Any:
    if isinstance(schema, dict):
        out = {k: _bounded(v, limit) for k, v in schema.items()}
        if out.get("type") == "string":
            out["maxLength"] = limit
        return out
    if isinstance(schema, list):
        return [_bounded(v, limit) for v in schema]
    return schema


def index_enum(n_steps: int) -> dict[str, Any]:
    """The 0-based step indices and ``-1`` (no error) as an ``enum``: grammar converters
    (llama.cpp's among them) support ``enum`` but not an integer's minimum and maximum."""
    return {"enum": [-1, *range(n_steps)]}


VERDICT_ENUM: dict[str, Any] = {"enum": ["correct", "incorrect"]}
STRING: dict[str, Any] = {"type": "string"}
"""A free text; :func:`fit` sets its ``maxLength``."""


def obj(properties: Mapping[str, Any]) -> dict[str, Any]:
    """An object schema whose properties are all required, in this order, and nothing else
    (the form every engine's structured outputs accept)."""
    return {"type": "object", "properties": dict(properties), "required": list(properties),
            "additionalProperties": False}


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (or ``\fbox{...}``) in ``text``, braces balanced;
    ``None`` when there is none or the last one is never closed."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    if not starts:
        return None
    start = starts[-1]
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None


def parse_boxed_index(text: str) -> int | None:
    r"""ProcessBench's rule: the LAST ``\boxed{}`` cast to int, else ``None`` (a wrong
    prediction). Surrounding spaces, ``$`` and a ``\text{}`` wrapper are tolerated."""
    content = last_boxed(text)
    if content is None:
        return None
    content = content.strip().strip("$").strip()
    wrapped = re.fullmatch(r"\\(?:text|mathrm|textbf)\{(.*)\}", content)
    if wrapped:
        content = wrapped.group(1).strip()
    if re.fullmatch(r"[-+−]?\d+", content):
        return int(content.replace("−", "-"))
    return None


def critique_from_index(index: int | None, n_steps: int, raw: str, critic: str) -> Critique:
    """A critique from a ProcessBench-style prediction: ``-1`` = no error, ``k`` = the earliest
    wrong step. A missing box or an index outside ``-1..n_steps-1`` is a parse failure."""
    if index is None or index < -1 or index >= n_steps:
        why = "no \\boxed{} integer" if index is None else f"index {index} is out of range"
        return Critique(raw=raw, parsed=False, critic=critic, feedback=f"unparsed: {why}")
    if index == -1:
        steps = tuple(StepVerdict(i, "correct") for i in range(n_steps))
        return Critique(steps, None, "correct", raw.strip(), raw=raw, critic=critic)
    steps = tuple(
        StepVerdict(i, "correct" if i < index else "incorrect" if i == index else "unknown")
        for i in range(n_steps)
    )
    return Critique(steps, index, "incorrect", raw.strip(), raw=raw, critic=critic)


PROCESSBENCH_NOTE = ("Write your reasoning in reasoning; the index you would put in \\boxed{} "
                     "goes in first_error (-1 when no paragraph has an error).")


def processbench_schema(n_steps: int, max_tokens: int) -> dict[str, Any]:
    """The structured form of the ProcessBench protocol: the reasoning (bounded by
    :func:`fit`), then the index, ``-1`` or a paragraph of the solution."""
    return fit(obj({"reasoning": STRING, "first_error": index_enum(n_steps)}), max_tokens)


def read_processbench_json(reply: Mapping[str, Any], n_steps: int, critic: str) -> Critique:
    """:func:`critique_from_index` of the reply's index; its reasoning is the feedback."""
    return critique_from_index(int(reply["first_error"]), n_steps, str(reply["reasoning"]),
                               critic)


# -- the stepwise format ------------------------------------------------------------------------
#   Step 1: correct - why
#   Step 2: incorrect - why
#   Overall: incorrect
_WORDS: dict[str, Verdict] = {
    "correct": "correct", "right": "correct", "valid": "correct", "ok": "correct",
    "true": "correct",
    "incorrect": "incorrect", "wrong": "incorrect", "invalid": "incorrect",
    "error": "incorrect", "erroneous": "incorrect", "false": "incorrect",
    "unknown": "unknown", "unclear": "unknown", "uncertain": "unknown",
}
_WORD = "|".join(sorted(_WORDS, key=len, reverse=True))
_DECOR = r"[\s*_#>`\[\]()]*"
_LEAD = r"[\s*_#>`\[\]()\-•+]*"  # also list bullets
_STEP_LINE = re.compile(
    rf"^{_LEAD}(?:step|paragraph)?{_DECOR}(\d+){_DECOR}[:.)\-–—]?{_DECOR}"
    rf"(?:verdict{_DECOR}[:=\-]?{_DECOR})?(not\s+correct|{_WORD})\b{_DECOR}[:.,;\-–—]?\s*(.*)$",
    re.IGNORECASE,
)
_OVERALL_LINE = re.compile(
    rf"^{_LEAD}(?:overall|final)(?:\s+(?:verdict|judge?ment|assessment|answer))?{_DECOR}"
    rf"[:=\-–—]?{_DECOR}(not\s+correct|{_WORD})\b",
    re.IGNORECASE,
)


@dataclass
class _Open:
    index: int
    verdict: Verdict
    lines: list[str]


def _word(w: str) -> Verdict:
    w = re.sub(r"\s+", " ", w.lower())
    return "incorrect" if w == "not correct" else _WORDS[w]


def parse_stepwise(text: str, n_steps: int, critic: str) -> Critique:
    """Read the stepwise format: one ``Step k: <verdict> - <explanation>`` line per step
    (numbered from 1; explanation lines may follow), then ``Overall: <verdict>``.

    Tolerated deviations: markdown decoration (``**Step 2:** Incorrect.``), "Paragraph k",
    bare ``k.`` numbering, synonyms (right/wrong/valid/invalid/error, "not correct"), a
    missing overall line (derived from the steps), steps left out (``unknown``).
    ``parsed=False`` when neither a step verdict nor an overall verdict can be read.
    """
    found: dict[int, _Open] = {}
    current: _Open | None = None
    overall: Overall | None = None
    for line in text.splitlines():
        m_over = _OVERALL_LINE.match(line)
        if m_over:
            v = _word(m_over.group(1))
            if v != "unknown":
                overall = v
            current = None
            continue
        m = _STEP_LINE.match(line)
        if m and 1 <= int(m.group(1)) <= n_steps:
            idx = int(m.group(1)) - 1
            current = _Open(idx, _word(m.group(2)), [m.group(3).strip()])
            found.setdefault(idx, current)
            if found[idx] is not current:
                current = None  # a repeated step number: the first verdict stands
            continue
        if current is not None and line.strip():
            current.lines.append(line.strip())
    if not found and overall is None:
        return Critique(
            raw=text, parsed=False, critic=critic,
            feedback="unparsed: no 'Step k: verdict' line and no 'Overall:' line",
        )
    steps = tuple(
        StepVerdict(i, found[i].verdict, _clean(" ".join(found[i].lines)))
        if i in found else StepVerdict(i, "unknown")
        for i in range(n_steps)
    )
    first_error = first_incorrect(steps)
    verdict: Overall | None = overall
    if verdict is None and found:
        all_judged = all(s.verdict != "unknown" for s in steps)
        verdict = "incorrect" if first_error is not None else ("correct" if all_judged else None)
    if verdict == "incorrect" and first_error is None:
        feedback = "the critic judged the solution incorrect without naming a wrong step"
    elif first_error is not None:
        feedback = f"Step {first_error + 1}: {steps[first_error].explanation}".rstrip(": ")
    else:
        feedback = ""
    return Critique(steps, first_error, verdict, feedback, raw=text, critic=critic)


def _clean(s: str) -> str:
    return s.strip().strip("*_ ").lstrip("-–—:;,. ").strip()


STEPWISE_NOTE = ("Your one-sentence reason and verdict for each step go in steps, one item per "
                 "step in order; first_error is the index of the first incorrect step counted "
                 "from 0 (Step 1 is 0), or -1 when every step is correct.")


def stepwise_schema(n_steps: int, max_tokens: int) -> dict[str, Any]:
    """The structured form of the stepwise format: exactly ``n_steps`` items ``{reason,
    verdict}`` in step order (the reasons bounded by :func:`fit`), then ``first_error``
    (``-1`` or a step's 0-based index), the part of the ``Overall:`` line."""
    item = obj({"reason": STRING, "verdict": VERDICT_ENUM})
    return fit(obj({"steps": {"type": "array", "items": item, "minItems": n_steps,
                              "maxItems": n_steps},
                    "first_error": index_enum(n_steps)}), max_tokens)


def read_stepwise_json(reply: Mapping[str, Any], n_steps: int, critic: str) -> Critique:
    """Read a reply valid against :func:`stepwise_schema`, as :func:`parse_stepwise` reads
    the same verdicts written as lines: the step verdicts decide the first error (the first
    step marked incorrect); ``first_error`` plays the part of the ``Overall:`` line (``-1``
    reads as "Overall: correct", a step as "Overall: incorrect").

    Where the two disagree, a step marked incorrect makes the solution "incorrect" whatever
    ``first_error`` says (stricter than :func:`parse_stepwise`, which keeps an "Overall:
    correct" beside a wrong step); a ``first_error`` that names another step than the first
    one marked incorrect is noted in the feedback and overruled by the steps; one that names
    a step while every step is marked correct gives "incorrect" with no first error, as
    "Overall: incorrect" does. So the reply never reads "correct" with a step marked
    incorrect."""
    steps = tuple(StepVerdict(i, item["verdict"], _clean(str(item["reason"])))
                  for i, item in enumerate(reply["steps"]))
    said = int(reply["first_error"])
    first_error = first_incorrect(steps)
    verdict: Overall = "incorrect" if first_error is not None or said >= 0 else "correct"
    if first_error is None and said >= 0:
        feedback = "the critic judged the solution incorrect without naming a wrong step"
    elif first_error is not None:
        feedback = f"Step {first_error + 1}: {steps[first_error].explanation}".rstrip(": ")
        if said != first_error:
            feedback += f" (first_error was {said}; the step verdicts decide)"
    else:
        feedback = ""
    return Critique(steps, first_error, verdict, feedback, critic=critic)
