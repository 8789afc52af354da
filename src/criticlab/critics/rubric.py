"""Critique-then-score on aspects (UltraCM of Cui et al. 2023, "UltraFeedback: Boosting Language
Models with Scaled AI Feedback"; Zhang et al. 2025, "MM-RLHF: The Next Step Forward in
Multimodal LLM Alignment"), for answers that are not math: per aspect a critique first, then
a rating.

``problem.question`` is the instruction; the answer is the solution's steps joined by
newlines. The model writes, per aspect, ``Aspect: name`` / ``Critique: ...`` / ``Rating: N``
and optionally a last ``Risks: ...`` line (kept as text in the feedback).

The :class:`Critique`: one :class:`StepVerdict` per aspect (``index`` = the aspect's position,
``score = N / scale``, ``explanation`` = the aspect's critique); an aspect *passes* when its
rating is at least the scale's midpoint rounded up (``scale // 2 + 1``: 3 of 1-5, 6 of 1-10).
``Critique.score`` is the mean normalised rating of the rated aspects; ``verdict`` is
"incorrect" if any rated aspect fails, "correct" only when every aspect is rated and passes,
``None`` otherwise. ``first_error`` is the first failing aspect's index (as in
:class:`~criticlab.critics.decrim.ConstraintCritic`). ``parsed=False`` when no aspect is rated.

A rubric file (:func:`load_rubric`) is either plain text, one aspect per line
``name: description`` (blank lines and ``#`` comments skipped, scale 1-5), or a JSON list of
``{"name", "description", "scale"}`` objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from criticlab.critics.deliberate import label_re
from criticlab.critics.parsing import STRING, fit, obj
from criticlab.critics.template import TemplateCritic
from criticlab.errors import ConfigError, InputError
from criticlab.models.base import GenerateConfig, LanguageModel
from criticlab.types import Critique, Overall, Problem, Solution, StepVerdict


@dataclass(frozen=True)
class Aspect:
    name: str
    description: str = ""
    scale: int = 5
    """Ratings run from 1 to ``scale``."""

    @property
    def passing(self) -> int:
        return self.scale // 2 + 1


ULTRAFEEDBACK: tuple[Aspect, ...] = (
    Aspect("instruction following", "Does the response do what the instruction asks, meeting "
           "its goal and every restriction it sets (format, length, style)?"),
    Aspect("truthfulness", "Is the response free of factual errors, made-up facts and claims "
           "that contradict the instruction or itself?"),
    Aspect("honesty", "Does the response express the right amount of confidence, and admit "
           "uncertainty or ignorance where it should instead of bluffing?"),
    Aspect("helpfulness", "Is the response informative, correct, relevant and useful for "
           "the instruction, without needless length or repetition?"),
)


def load_rubric(path: str | Path) -> tuple[Aspect, ...]:
    """Aspects from a rubric file (see the module docstring). Raises ``InputError`` naming
    the file, line and field on a bad file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the rubric: {e}", path=str(p)) from e
    aspects = _from_json(text, str(p)) if text.lstrip().startswith("[") else _from_lines(text,
                                                                                       str(p))
    if not aspects:
        raise InputError("the rubric has no aspects", path=str(p))
    seen: set[str] = set()
    for a in aspects:
        if _norm(a.name) in seen:
            raise InputError(f"aspect {a.name!r} appears twice", path=str(p), field="name")
        seen.add(_norm(a.name))
    return tuple(aspects)


def _from_lines(text: str, path: str) -> list[Aspect]:
    out = []
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, description = line.partition(":")
        if not sep or not name.strip():
            raise InputError('expected "name: description"', path=path, line=no, field="aspect")
        out.append(Aspect(name.strip(), description.strip()))
    return out


def _from_json(text: str, path: str) -> list[Aspect]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from e
    if not isinstance(items, list):
        raise InputError("expected a JSON list of aspects", path=path)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError("expected an object", path=path, field=f"[{i}]")
        name, description, scale = item.get("name"), item.get("description", ""), \
            item.get("scale", 5)
        if not isinstance(name, str) or not name.strip():
            raise InputError("a non-empty string is required", path=path, field=f"[{i}].name")
        if not isinstance(description, str):
            raise InputError("must be a string", path=path, field=f"[{i}].description")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
            raise InputError("must be a whole number of at least 2", path=path,
                             field=f"[{i}].scale")
        out.append(Aspect(name.strip(), description.strip(), scale))
    return out


def render_aspects(aspects: Sequence[Aspect]) -> str:
    return "\n".join(f"- {a.name} (1-{a.scale}): {a.description}".rstrip(": ")
                     for a in aspects)


def _norm(name: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", name.lower()).split())


_ASPECT = label_re(r"aspect")
_CRIT = label_re(r"critique", r"rationale", r"feedback")
_RATING = label_re(r"rating", r"score")
_RISKS = label_re(r"(?:safety\s+)?risks?")
_NUMBER = re.compile(r"^[\s*_\[(\"']*(\d+(?:\.\d+)?)")


def _match_aspect(name: str, aspects: Sequence[Aspect], taken: set[int]) -> int | None:
    n = _norm(name)
    for i, a in enumerate(aspects):
        if i not in taken and n and (n == _norm(a.name)):
            return i
    for i, a in enumerate(aspects):  # "Instruction following (1-5)", "Honesty and uncertainty"
        if i not in taken and n and (n.startswith(_norm(a.name)) or _norm(a.name) in n):
            return i
    return None


def parse_rubric(text: str, aspects: Sequence[Aspect], critic: str) -> Critique:
    """Read ``Aspect: / Critique: / Rating:`` blocks (see the module docstring). An aspect
    named twice keeps its first block; a name that matches no aspect, a missing rating or one
    outside 1..scale leaves that aspect "unknown" with ``score=None``."""
    ratings: dict[int, float] = {}
    notes: dict[int, list[str]] = {}
    risks: list[str] = []
    current: int | None = None
    taken: set[int] = set()
    for line in text.splitlines():
        if m := _ASPECT.match(line):
            current = _match_aspect(m.group(1), aspects, taken)
            if current is not None:
                taken.add(current)
                notes[current] = []
        elif m := _RISKS.match(line):
            risks.append(m.group(1))
            current = None
        elif current is not None and (m := _RATING.match(line)):
            num = _NUMBER.match(m.group(1))
            if num and 1 <= float(num.group(1)) <= aspects[current].scale:
                ratings[current] = float(num.group(1))
            current = None  # the rating closes the aspect's block
        elif current is not None and (m := _CRIT.match(line)):
            notes[current].append(m.group(1))
        elif current is not None and line.strip():
            notes[current].append(line.strip())
    if not ratings:
        return Critique(raw=text, parsed=False, critic=critic,
                        feedback="unparsed: no aspect has a readable 'Rating: N'")
    return _rated(ratings, notes, risks, aspects, text, critic)


def _rated(ratings: dict[int, float], notes: dict[int, list[str]], risks: list[str],
           aspects: Sequence[Aspect], text: str, critic: str) -> Critique:
    """The critique of the ratings (at least one), notes and risks read (the rules of
    :func:`parse_rubric`)."""
    steps = []
    for i, a in enumerate(aspects):
        why = " ".join(x for x in notes.get(i, []) if x).strip()
        if i not in ratings:
            steps.append(StepVerdict(i, "unknown", why or "not rated"))
            continue
        r = ratings[i]
        steps.append(StepVerdict(i, "correct" if r >= a.passing else "incorrect", why,
                                 r / a.scale))
    failed = [s.index for s in steps if s.verdict == "incorrect"]
    verdict: Overall | None = "incorrect" if failed else (
        "correct" if len(ratings) == len(aspects) else None)
    lines = [f"{a.name}: {ratings[i]:g}/{a.scale}" + (f" - {steps[i].explanation}"
                                                       if steps[i].explanation else "")
             if i in ratings else f"{a.name}: not rated" for i, a in enumerate(aspects)]
    lines += [f"Risks: {r}" for r in risks if r]
    mean = sum(s.score or 0.0 for s in steps if s.score is not None) / len(ratings)
    return Critique(tuple(steps), failed[0] if failed else None, verdict, "\n".join(lines),
                    score=mean, raw=text, critic=critic)


RUBRIC_NOTE = ("Your critique and rating of each aspect go in aspects, under the aspect's "
               "name; the safety risks go in risks (an empty string when there are none).")


def rubric_schema(aspects: Sequence[Aspect], max_tokens: int) -> dict[str, Any]:
    """The structured form of the rubric format: under ``aspects``, per aspect by name and
    in order, ``{critique, rating}`` with the rating a whole number of the aspect's scale;
    then ``risks``; the texts bounded by :func:`~criticlab.critics.parsing.fit`."""
    return fit(obj({"aspects": obj({a.name: obj({"critique": STRING,
                                                 "rating": {"enum": list(range(1,
                                                                               a.scale + 1))}})
                                    for a in aspects}),
                    "risks": STRING}), max_tokens)


def read_rubric_json(reply: Mapping[str, Any], aspects: Sequence[Aspect],
                     critic: str) -> Critique:
    """Read a reply valid against :func:`rubric_schema` by the rules of
    :func:`parse_rubric` (every aspect is rated)."""
    rated = reply["aspects"]
    ratings = {i: float(rated[a.name]["rating"]) for i, a in enumerate(aspects)}
    notes = {i: [str(rated[a.name]["critique"]).strip()] for i, a in enumerate(aspects)}
    risks = [str(reply["risks"]).strip()]
    return _rated(ratings, notes, risks, aspects, "", critic)


class RubricCritic(TemplateCritic):
    """Critique-then-score on ``aspects`` (UltraFeedback's four by default, or
    ``load_rubric(path)``) in one call (``rubric.txt``; placeholders ``{instruction}``,
    ``{answer}``, ``{aspects}``). It does not check math steps; use it for open-ended
    answers."""

    name = "rubric"
    default_template = "rubric.txt"
    placeholders = ("{instruction}", "{answer}", "{aspects}")

    def __init__(
        self,
        model: LanguageModel,
        aspects: Sequence[Aspect] | str | Path = ULTRAFEEDBACK,
        *,
        config: GenerateConfig | None = None,
        template: str | Path | None = None,
        structured: bool = False,
    ) -> None:
        self.aspects = load_rubric(aspects) if isinstance(aspects, str | Path) else tuple(aspects)
        if not self.aspects:
            raise ConfigError("a rubric needs at least one aspect")
        if structured and len({a.name for a in self.aspects}) < len(self.aspects):
            raise ConfigError("a structured rubric needs distinct aspect names")
        super().__init__(model, config=config, template=template, structured=structured)

    def values(self, problem: Problem, solution: Solution) -> dict[str, str]:
        return {"instruction": problem.question, "answer": "\n".join(solution.steps),
                "aspects": render_aspects(self.aspects)}

    def parse(self, text: str, problem: Problem, solution: Solution) -> Critique:
        return parse_rubric(text, self.aspects, self.name)

    def schema(self, problem: Problem, solution: Solution) -> dict[str, Any] | None:
        return rubric_schema(self.aspects, self.config.max_tokens)

    def structured_note(self) -> str:
        return RUBRIC_NOTE

    def read_json(self, reply: Mapping[str, Any], problem: Problem,
                  solution: Solution) -> Critique:
        return read_rubric_json(reply, self.aspects, self.name)
