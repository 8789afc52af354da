"""Principle-first generative reward (DeepSeek-GRM with SPCT: Liu et al. 2025, "Inference-Time
Scaling for Generalist Reward Modeling"): the model writes the principles that matter for this
problem, then a critique guided by them, then a pointwise ``Score: N`` (1-10).

- One critique (:meth:`PrinciplesCritic.critique`): ``score = N / 10``; the verdict is
  "incorrect" when ``N <= threshold`` (default 5), else "correct". ``first_error`` is ``None``
  unless an (optional) ``First error: Step k`` line names a step of the solution *and* the
  verdict is "incorrect" (a named step under a passing score is ignored, and the feedback
  says so). Step verdicts: "correct" before a named first error, "incorrect" at it, "unknown"
  elsewhere; all "unknown" when no step is named (a score judges the whole solution).
- Inference-time scaling (:meth:`PrinciplesCritic.score`): sample ``k`` critiques and sum their
  raw scores N (voting, as in the paper: the sum lies in ``0..10k``). Unparsed samples add
  nothing. With ``meta_judge=`` a second model call per sample (``meta_judge.txt``) asks whether
  the critique is sound; one it answers "no" is discarded before the sum (an unreadable
  meta-answer keeps the critique: the meta judge discards only on a clear "no"). Sums are
  comparable across responses only for the same ``k``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from criticlab.critics.deliberate import (
    NONE_WORDS,
    first_error_enum,
    label_re,
    step_of,
    step_reference,
)
from criticlab.critics.parsing import STRING, fit, obj
from criticlab.critics.template import TemplateCritic, fill, load_template
from criticlab.errors import ConfigError
from criticlab.models.base import GenerateConfig, LanguageModel, Message
from criticlab.steps import render_numbered
from criticlab.types import Critique, Overall, Problem, Solution, StepVerdict, Verdict

_SCORE = label_re(r"(?:final\s+|overall\s+)?score")
_NUMBER = re.compile(r"^[\s*_\[(\"']*(\d+(?:\.\d+)?)\s*(?:/\s*10\b|out\s+of\s+10\b)?")
_CRITIQUE = label_re(r"critique")
_PRINCIPLES = label_re(r"principles?")
_FIRST_ERROR = label_re(r"first\s+(?:error|wrong\s+step|mistake|incorrect\s+step)")
_META_ANSWER = label_re(r"answer", r"sound", r"verdict", r"decision")
_YES_NO = re.compile(r"^[\s*_\[(\"']*(yes|no)\b", re.IGNORECASE)
MAX_SCORE = 10


def parse_principles(text: str, n_steps: int, critic: str, threshold: float = 5) -> Critique:
    """Read ``Principles: ... / Critique: ... / [First error: Step k | none] / Score: N``.
    The first ``Score:`` line holding a number 1..10 (``7``, ``7/10``, ``7.5``) counts; none,
    or a number outside 1..10, gives ``parsed=False``."""
    points: float | None = None
    bad = ""
    first_step: int | None = None
    critique_lines: list[str] = []
    section = ""
    for line in text.splitlines():
        if (m := _SCORE.match(line)) and points is None:
            num = _NUMBER.match(m.group(1))
            value = float(num.group(1)) if num else None
            if value is not None and 1 <= value <= MAX_SCORE:
                points = value
                break  # the score ends the critique; what follows is rambling
            bad = bad or f"score {m.group(1)!r} is not a number from 1 to {MAX_SCORE}"
            section = ""
        elif (m := _FIRST_ERROR.match(line)) and first_step is None:
            if not NONE_WORDS.match(m.group(1)):
                first_step = step_reference(m.group(1))
            section = ""
        elif m := _CRITIQUE.match(line):
            section = "critique"
            critique_lines.append(m.group(1))
        elif _PRINCIPLES.match(line):
            section = "principles"
        elif section == "critique":
            critique_lines.append(line.strip())
    if points is None:
        return Critique(raw=text, parsed=False, critic=critic,
                        feedback=f"unparsed: {bad or 'no Score: line'}")
    critique_text = " ".join(x for x in critique_lines if x).strip()
    return _scored(points, first_step, critique_text, n_steps, text, critic, threshold)


def _scored(points: float, first_step: int | None, critique_text: str, n_steps: int,
            text: str, critic: str, threshold: float) -> Critique:
    """The critique of a score, a named first step (1-based) and the critique's text (the
    rules of :func:`parse_principles`)."""
    verdict: Overall = "incorrect" if points <= threshold else "correct"
    first_error = None
    note = ""
    if first_step is not None and 1 <= first_step <= n_steps:
        if verdict == "incorrect":
            first_error = first_step - 1
        else:
            note = f" (it named step {first_step} under a passing score; ignored)"
    steps = tuple(StepVerdict(i, _step_verdict(i, first_error)) for i in range(n_steps))
    shown = f"{points:g}"
    feedback = f"Score {shown}/{MAX_SCORE}{note}" + (f": {critique_text}" if critique_text else "")
    if first_error is not None:
        feedback = f"Step {first_error + 1} is the first error. {feedback}"
    return Critique(steps, first_error, verdict, feedback, score=points / MAX_SCORE, raw=text,
                    critic=critic)


PRINCIPLES_NOTE = ("Your principles, critique, first error (\"Step k\" or \"none\") and score "
                   "go in principles, critique, first_error and score.")


def principles_schema(n_steps: int, max_tokens: int) -> dict[str, Any]:
    """The structured form of the principles format, in its order: the principles and the
    critique (bounded by :func:`~criticlab.critics.parsing.fit`), the first error ``none``
    or ``Step k``, the score a whole number 1..10."""
    return fit(obj({"principles": STRING, "critique": STRING,
                    "first_error": first_error_enum(n_steps),
                    "score": {"enum": list(range(1, MAX_SCORE + 1))}}), max_tokens)


def read_principles_json(reply: Mapping[str, Any], n_steps: int, critic: str,
                         threshold: float = 5) -> Critique:
    """Read a reply valid against :func:`principles_schema` by the rules of
    :func:`parse_principles` (a step named under a passing score is ignored, and the
    feedback says so)."""
    return _scored(float(reply["score"]), step_of(str(reply["first_error"])),
                   str(reply["critique"]).strip(), n_steps, "", critic, threshold)


def _step_verdict(i: int, first_error: int | None) -> Verdict:
    if first_error is None:
        return "unknown"
    return "correct" if i < first_error else "incorrect" if i == first_error else "unknown"


def parse_meta_answer(text: str) -> bool | None:
    """A meta judge's ``Answer: yes|no`` (a bare leading yes/no also counts); ``None`` when
    unreadable."""
    for line in text.splitlines():
        m = _META_ANSWER.match(line)
        if m and (yn := _YES_NO.match(m.group(1))):
            return yn.group(1).lower() == "yes"
    yn = _YES_NO.match(text)
    return None if yn is None else yn.group(1).lower() == "yes"


class PrinciplesCritic(TemplateCritic):
    """Principles, critique, score in one call (``principles.txt``). ``threshold``: scores at
    or below it are "incorrect". ``meta_judge``: a model asked (``meta_judge.txt``) whether
    each sampled critique is sound before :meth:`score` sums them; it may be the same model.
    """

    name = "principles"
    default_template = "principles.txt"

    def __init__(
        self,
        model: LanguageModel,
        *,
        threshold: float = 5,
        meta_judge: LanguageModel | None = None,
        config: GenerateConfig | None = None,
        template: str | Path | None = None,
        structured: bool = False,
    ) -> None:
        if not 1 <= threshold < MAX_SCORE:
            raise ConfigError(f"threshold must be in [1, {MAX_SCORE}), got {threshold}")
        super().__init__(model, config=config, template=template, structured=structured)
        self.threshold = threshold
        self.meta_judge = meta_judge
        self.meta_template = load_template(
            "meta_judge.txt", ("{problem}", "{steps}", "{critique}"))

    def parse(self, text: str, problem: Problem, solution: Solution) -> Critique:
        return parse_principles(text, len(solution.steps), self.name, self.threshold)

    def schema(self, problem: Problem, solution: Solution) -> dict[str, Any] | None:
        return principles_schema(len(solution.steps), self.config.max_tokens)

    def structured_note(self) -> str:
        return PRINCIPLES_NOTE

    def read_json(self, reply: Mapping[str, Any], problem: Problem,
                  solution: Solution) -> Critique:
        return read_principles_json(reply, len(solution.steps), self.name, self.threshold)

    async def judge(self, problem: Problem, solution: Solution, critique: Critique
                    ) -> bool | None:
        """The meta judge's opinion of one critique: ``True`` sound, ``False`` unsound,
        ``None`` unreadable (or no meta judge)."""
        if self.meta_judge is None:
            return None
        body = fill(self.meta_template, problem=problem.question,
                    steps=render_numbered(solution.steps), critique=critique.raw.strip())
        config = GenerateConfig(temperature=0.0, max_tokens=64, seed=self.config.seed)
        gens = await self.meta_judge.generate([Message("user", body, problem.images)], config)
        return parse_meta_answer(gens[0].text)

    async def keep(self, problem: Problem, solution: Solution,
                   critiques: Sequence[Critique]) -> list[Critique]:
        """The parsed critiques the meta judge does not reject (all parsed ones without one)."""
        parsed = [c for c in critiques if c.parsed and c.score is not None]
        if self.meta_judge is None:
            return parsed
        opinions = await asyncio.gather(*(self.judge(problem, solution, c) for c in parsed))
        return [c for c, ok in zip(parsed, opinions, strict=True) if ok is not False]

    async def score(self, problem: Problem, solution: Solution, k: int) -> float:
        """Sum of the raw scores (1-10) of ``k`` critiques sampled at temperature 1.0, top_p 0.9
        (:meth:`sample`) that parse and survive the meta judge; ``0.0`` when none does."""
        if k < 1:
            raise ConfigError("k must be at least 1")
        critiques = await self.sample(problem, solution, k)
        kept = await self.keep(problem, solution, critiques)
        return sum(round((c.score or 0.0) * MAX_SCORE, 6) for c in kept)
