"""Deliberate critique (DeepCritic: Yang et al. 2025, "DeepCritic: Deliberate Critique with
Large Language Models"): each step is verified from several perspectives (re-derive it, check it
against the problem statement, test it with numbers) and given an initial judgement; the critic
then critiques its own initial judgements (meta-critique) and states a final verdict and first
error, which may revise them.

This module also holds the line-label parsing helpers the other single-prompt critics share;
their base class, :class:`~criticlab.critics.template.TemplateCritic`, is re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from criticlab.critics.parsing import STRING, VERDICT_ENUM, fit, obj
from criticlab.critics.template import TemplateCritic
from criticlab.types import Critique, Overall, Problem, Solution, StepVerdict, Verdict

# -- shared parsing helpers ---------------------------------------------------------------------
DECOR = r"[\s*_#>`]*"


def label_re(*labels: str) -> re.Pattern[str]:
    """A line ``Label: value`` (markdown decoration tolerated: ``**Label:** value``); group 1
    is the value. ``labels`` are regex fragments, matched case-insensitively."""
    alts = "|".join(labels)
    return re.compile(rf"^{DECOR}(?:{alts}){DECOR}[:=\-–—]{DECOR}(.*?)[\s*_`]*$", re.IGNORECASE)


_VERDICT_WORDS: dict[str, Overall] = {
    "not correct": "incorrect", "incorrect": "incorrect", "wrong": "incorrect",
    "invalid": "incorrect", "erroneous": "incorrect",
    "false": "incorrect", "correct": "correct", "right": "correct", "valid": "correct",
    "ok": "correct", "true": "correct",
}
_VERDICT = re.compile(
    r"^[\s*_\[(\"']*(" + "|".join(sorted(_VERDICT_WORDS, key=len, reverse=True)).replace(
        " ", r"\s+") + r")\b", re.IGNORECASE)


_IN_TEXT = re.compile(r"\b(not\s+correct|incorrect|correct|wrong)\b", re.IGNORECASE)


def verdict_word(value: str) -> Overall | None:
    """``correct``/``incorrect`` (or a synonym) at the start of ``value``, else the first of
    correct/incorrect/not correct/wrong inside it ("The solution is wrong"), else ``None``."""
    m = _VERDICT.match(value) or _IN_TEXT.search(value)
    return _VERDICT_WORDS[re.sub(r"\s+", " ", m.group(1).lower())] if m else None


NONE_WORDS = re.compile(r"^[\s*_\[(\"']*(?:none|no\s+error|no\s+wrong|nothing|n/?a\b|-1\b|-\s*$)",
                        re.IGNORECASE)
_STEP_REF = re.compile(r"\bstep\s*(\d+)|^[\s*_\[(\"']*(\d+)\b", re.IGNORECASE)


def step_reference(value: str) -> int | None:
    """The 1-based step number named in ``value`` ("Step 3", "3", "step 3 (the sum)")."""
    m = _STEP_REF.search(value)
    return int(m.group(1) or m.group(2)) if m else None


# -- the deliberate format -----------------------------------------------------------------------
#   Step 1:
#   Re-derive: ...            (any perspective lines)
#   Judgement: correct
#   ...
#   Meta-critique: ...
#   Final verdict: incorrect
#   First error: Step 2
_STEP_HEAD = re.compile(rf"^{DECOR}step{DECOR}(\d+){DECOR}[:.)]{DECOR}(.*?)[\s*_`]*$",
                        re.IGNORECASE)
_JUDGEMENT = label_re(r"(?:initial\s+)?judge?ment", r"verdict")
_META = label_re(r"meta[\s\-–]*critique")
_FINAL = label_re(r"final\s+(?:verdict|judge?ment)", r"overall(?:\s+verdict)?")
_FIRST_ERROR = label_re(r"first\s+(?:error|wrong\s+step|mistake|incorrect\s+step)")


@dataclass
class _Block:
    lines: list[str] = field(default_factory=list)
    judgement: Overall | None = None

    def add(self, text: str) -> None:
        j = _JUDGEMENT.match(text)
        if j:
            self.judgement = self.judgement or verdict_word(j.group(1))
        elif text.strip():
            self.lines.append(text.strip())


@dataclass
class _Read:
    blocks: dict[int, _Block] = field(default_factory=dict)
    meta: list[str] | None = None
    final: Overall | None = None
    first_seen: bool = False
    first_step: int | None = None  # 1-based, as written; None = "none"
    first_unreadable: str = ""


def _read(text: str, n_steps: int) -> _Read:
    r = _Read()
    current: _Block | None = None
    phase = "steps"  # -> "meta" -> "final"; after the final lines the model is rambling
    for line in text.splitlines():
        if (m := _FINAL.match(line)) and r.final is None and verdict_word(m.group(1)):
            r.final, phase = verdict_word(m.group(1)), "final"
        elif (m := _FIRST_ERROR.match(line)) and not r.first_seen:
            r.first_seen, phase = True, "final"
            if not NONE_WORDS.match(m.group(1)):
                r.first_step = step_reference(m.group(1))
                r.first_unreadable = "" if r.first_step is not None else m.group(1) or "(empty)"
        elif phase == "final":
            continue
        elif (m := _META.match(line)) and phase == "steps":
            r.meta, phase = [m.group(1)], "meta"
        elif phase == "meta" and r.meta is not None:
            r.meta.append(line.strip())
        elif m := _STEP_HEAD.match(line):
            k = int(m.group(1))
            current = r.blocks.setdefault(k - 1, _Block()) if 1 <= k <= n_steps else None
            if current is not None and m.group(2):
                rest = m.group(2)
                if not _JUDGEMENT.match(rest) and (v := _VERDICT.match(rest)):
                    current.judgement = current.judgement or verdict_word(rest)
                    rest = rest[v.end():].lstrip(" -–—:;,.*_")
                current.add(rest)
        elif current is not None:
            current.add(line)
    return r


def parse_deliberate(text: str, n_steps: int, critic: str) -> Critique:
    """Read the deliberate format (see the comment above). The final lines win: a readable
    ``First error:`` line decides the first error (``none`` = no error), even against the
    initial judgements and against a ``Final verdict: correct``; without it ``Final verdict``
    decides (``incorrect`` keeps the earliest initially wrong step). Step verdicts are made
    consistent with the final first error, and a revised one says so. With neither final line
    (a truncated output) the initial judgements decide as in the stepwise format.
    ``parsed=False`` when nothing can be read or the first error names no step of the
    solution."""
    return _decide(_read(text, n_steps), n_steps, text, critic)


def _decide(r: _Read, n_steps: int, text: str, critic: str) -> Critique:
    """The critique of what was read (the rules of :func:`parse_deliberate`)."""
    if r.first_unreadable or (r.first_step is not None and not 1 <= r.first_step <= n_steps):
        what = r.first_unreadable or f"step {r.first_step}"
        return Critique(raw=text, parsed=False, critic=critic,
                        feedback=f"unparsed: the first error ({what}) names no step 1..{n_steps}")
    initial: list[Verdict] = [r.blocks[i].judgement or "unknown" if i in r.blocks else "unknown"
                              for i in range(n_steps)]
    wrong = [i for i, v in enumerate(initial) if v == "incorrect"]
    note = ""
    verdict: Overall | None
    if r.first_seen:
        first_error = None if r.first_step is None else r.first_step - 1
        verdict = "incorrect" if first_error is not None else (r.final or "correct")
        if r.final == "correct" and first_error is not None:
            note = "the final verdict said correct but named a first error; the error stands"
    elif r.final is not None:
        first_error = wrong[0] if r.final == "incorrect" and wrong else None
        verdict = r.final
    elif any(v != "unknown" for v in initial):
        first_error = wrong[0] if wrong else None
        verdict = "incorrect" if wrong else (None if "unknown" in initial else "correct")
        note = "no final verdict; the initial judgements decide"
    else:
        return Critique(raw=text, parsed=False, critic=critic,
                        feedback="unparsed: no 'Judgement:', 'Final verdict:' or 'First error:'")
    decided = r.first_seen or r.final is not None
    steps = tuple(_final_step(i, initial[i], r.blocks.get(i), first_error, verdict, decided)
                  for i in range(n_steps))
    parts = []
    if first_error is not None:
        parts.append(f"Step {first_error + 1}: {steps[first_error].explanation}".rstrip(": "))
    elif verdict == "incorrect":
        parts.append("the critic judged the solution incorrect without naming a wrong step")
    meta_text = " ".join(x for x in (r.meta or []) if x).strip()
    if meta_text:
        parts.append(f"Meta-critique: {meta_text}")
    if note:
        parts.append(f"({note})")
    return Critique(steps, first_error, verdict, "\n".join(parts), raw=text, critic=critic)


def _final_step(i: int, initial: Verdict, block: _Block | None, first_error: int | None,
                verdict: Overall | None, decided: bool) -> StepVerdict:
    why = " ".join(block.lines).strip() if block else ""
    if not decided:
        return StepVerdict(i, initial, why)
    now: Verdict
    if first_error is not None:
        now = "correct" if i < first_error else "incorrect" if i == first_error else initial
    else:
        now = "correct" if verdict == "correct" else (
            "unknown" if initial == "incorrect" else initial)
    if now != initial and initial != "unknown":
        why = f"{why} (revised by the meta-critique: initially {initial})".strip()
    return StepVerdict(i, now, why)


# -- the structured form ---------------------------------------------------------------------------
#   {"steps": [{"checks": "Re-derive: ... Problem check: ... Numbers check: ...",
#               "judgement": "correct"}, ...],          (one item per step, in order)
#    "meta_critique": "...", "final_verdict": "incorrect", "first_error": "Step 2"}
# The three checks of a step share one string: three keys per step would take a budget of
# their own (and three bounds of a third each would be too short to say anything).
DELIBERATE_NOTE = ("Your three checks (Re-derive, Problem check, Numbers check) and initial "
                   "judgement of each step go in checks and judgement, one item of steps per "
                   "step in order; your meta-critique, final verdict and first error "
                   "(\"Step k\" or \"none\") go in meta_critique, final_verdict and first_error.")


def first_error_enum(n_steps: int) -> dict[str, Any]:
    """What a ``First error:`` line may say, as an ``enum``: ``none`` or ``Step k`` (k from
    1, as the prompt numbers the steps)."""
    return {"enum": ["none", *(f"Step {k}" for k in range(1, n_steps + 1))]}


def step_of(value: str) -> int | None:
    """The 1-based step of a :func:`first_error_enum` value; ``None`` for ``none``."""
    return None if value == "none" else int(value.removeprefix("Step "))


def deliberate_schema(n_steps: int, max_tokens: int) -> dict[str, Any]:
    """The structured form of the deliberate format (above), its texts bounded by
    :func:`~criticlab.critics.parsing.fit`."""
    step = obj({"checks": STRING, "judgement": VERDICT_ENUM})
    return fit(obj({"steps": {"type": "array", "items": step, "minItems": n_steps,
                              "maxItems": n_steps},
                    "meta_critique": STRING,
                    "final_verdict": VERDICT_ENUM,
                    "first_error": first_error_enum(n_steps)}), max_tokens)


def read_deliberate_json(reply: Mapping[str, Any], n_steps: int, critic: str) -> Critique:
    """Read a reply valid against :func:`deliberate_schema` by the rules of
    :func:`parse_deliberate`, as if its fields were the lines of the text format: the
    final lines win (``first_error`` decides, even against ``final_verdict: correct``)."""
    r = _Read(meta=[str(reply["meta_critique"]).strip()], final=reply["final_verdict"],
              first_seen=True, first_step=step_of(str(reply["first_error"])))
    for i, item in enumerate(reply["steps"]):
        checks = str(item["checks"]).strip()
        r.blocks[i] = _Block([checks] if checks else [], item["judgement"])
    return _decide(r, n_steps, "", critic)


class DeliberateCritic(TemplateCritic):
    """DeepCritic-style deliberate critique in one model call (``deliberate.txt``; numbered
    ``{problem}``/``{steps}``; ``template=`` takes a user's own file). ``critique`` is greedy,
    :meth:`sample` draws critiques for :class:`~criticlab.critics.ensemble.VoteCritic`. It
    neither runs the perspectives as separate calls nor sees the reference answer."""

    name = "deliberate"
    default_template = "deliberate.txt"
    default_max_tokens = 2048

    def stop(self, n_steps: int) -> tuple[str, ...]:
        # A block for a step the solution does not have means the model is rambling.
        return (f"\nStep {n_steps + 1}:",)

    def parse(self, text: str, problem: Problem, solution: Solution) -> Critique:
        return parse_deliberate(text, len(solution.steps), self.name)

    def schema(self, problem: Problem, solution: Solution) -> dict[str, Any] | None:
        return deliberate_schema(len(solution.steps), self.config.max_tokens)

    def structured_note(self) -> str:
        return DELIBERATE_NOTE

    def read_json(self, reply: Mapping[str, Any], problem: Problem,
                  solution: Solution) -> Critique:
        return read_deliberate_json(reply, len(solution.steps), self.name)
