"""Model text -> verdicts. Nothing here raises on model output: a text that cannot be read
gives ``parsed=False`` with the text kept in ``raw``; it is never read as "correct"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from criticlab.critics.base import first_incorrect
from criticlab.types import Critique, Overall, StepVerdict, Verdict


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
