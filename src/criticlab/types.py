"""The core types that flow through criticlab: a problem, a solution split into steps, and a
critique of that solution. All are frozen dataclasses and round-trip through plain dicts
(``from_dict(to_dict(x)) == x``), which is how they are stored and exported."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

Verdict = Literal["correct", "incorrect", "unknown"]
Overall = Literal["correct", "incorrect"]

VERDICTS: tuple[Verdict, ...] = ("correct", "incorrect", "unknown")


@dataclass(frozen=True)
class Usage:
    """Token and call counts. ``calls`` are requests that reached an engine; ``cached`` are
    requests answered by the store without calling the engine."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.calls + other.calls,
            self.cached + other.cached,
        )

    def __sub__(self, other: Usage) -> Usage:
        """What was spent beyond ``other`` (a part of this total)."""
        return Usage(
            self.prompt_tokens - other.prompt_tokens,
            self.completion_tokens - other.completion_tokens,
            self.calls - other.calls,
            self.cached - other.cached,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "calls": self.calls,
            "cached": self.cached,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Usage:
        return cls(
            int(d.get("prompt_tokens", 0)),
            int(d.get("completion_tokens", 0)),
            int(d.get("calls", 0)),
            int(d.get("cached", 0)),
        )


@dataclass(frozen=True)
class Problem:
    """A question. ``images`` are paths or URLs of pictures the question refers to; they are
    sent to vision-language models as image parts."""

    id: str
    question: str
    reference_answer: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    images: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.images, tuple):
            object.__setattr__(self, "images", tuple(self.images))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "question": self.question,
            "reference_answer": self.reference_answer,
            "metadata": dict(self.metadata),
        }
        if self.images:
            d["images"] = list(self.images)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Problem:
        return cls(
            id=str(d["id"]),
            question=str(d["question"]),
            reference_answer=d.get("reference_answer"),
            metadata=dict(d.get("metadata") or {}),
            images=tuple(str(x) for x in d.get("images") or ()),
        )


@dataclass(frozen=True)
class Solution:
    """A solution already split into steps (see :mod:`criticlab.steps` for splitting).
    ``text`` is the free text the steps were split from, exactly as given, where that matters:
    splitting strips lines, and a program (a code record's, for the code critic) needs its
    indentation."""

    steps: tuple[str, ...]
    final_answer: str | None = None
    source: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.steps, tuple):
            object.__setattr__(self, "steps", tuple(self.steps))

    def to_dict(self) -> dict[str, Any]:
        d = {"steps": list(self.steps), "final_answer": self.final_answer, "source": self.source}
        return d if self.text is None else {**d, "text": self.text}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Solution:
        text = d.get("text")
        return cls(
            steps=tuple(str(s) for s in d["steps"]),
            final_answer=d.get("final_answer"),
            source=d.get("source"),
            text=None if text is None else str(text),
        )


@dataclass(frozen=True)
class StepVerdict:
    index: int
    verdict: Verdict
    explanation: str = ""
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "verdict": self.verdict,
            "explanation": self.explanation,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepVerdict:
        verdict = d["verdict"]
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        score = d.get("score")
        return cls(
            index=int(d["index"]),
            verdict=cast(Verdict, verdict),
            explanation=str(d.get("explanation", "")),
            score=None if score is None else float(score),
        )


@dataclass(frozen=True)
class Critique:
    """A judgement of one solution.

    ``first_error`` is the 0-based index of the earliest wrong step, ``None`` when the critic
    finds no wrong step. ``parsed=False`` means the critic's output could not be read; such a
    critique is never counted as "correct" and keeps the model's text in ``raw``.
    """

    steps: tuple[StepVerdict, ...] = ()
    first_error: int | None = None
    verdict: Overall | None = None
    feedback: str = ""
    score: float | None = None
    raw: str = ""
    parsed: bool = True
    critic: str = ""
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        if not isinstance(self.steps, tuple):
            object.__setattr__(self, "steps", tuple(self.steps))

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.to_dict() for s in self.steps],
            "first_error": self.first_error,
            "verdict": self.verdict,
            "feedback": self.feedback,
            "score": self.score,
            "raw": self.raw,
            "parsed": self.parsed,
            "critic": self.critic,
            "usage": self.usage.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Critique:
        verdict = d.get("verdict")
        if verdict not in (None, "correct", "incorrect"):
            raise ValueError(f"verdict must be 'correct', 'incorrect' or null, got {verdict!r}")
        first_error = d.get("first_error")
        score = d.get("score")
        return cls(
            steps=tuple(StepVerdict.from_dict(s) for s in d.get("steps", ())),
            first_error=None if first_error is None else int(first_error),
            verdict=cast("Overall | None", verdict),
            feedback=str(d.get("feedback", "")),
            score=None if score is None else float(score),
            raw=str(d.get("raw", "")),
            parsed=bool(d.get("parsed", True)),
            critic=str(d.get("critic", "")),
            usage=Usage.from_dict(d.get("usage") or {}),
        )


@dataclass(frozen=True)
class Gold:
    """Benchmark labels. ``first_error`` is ``None`` when every step is correct."""

    first_error: int | None = None
    step_labels: tuple[bool, ...] | None = None
    final_answer_correct: bool | None = None

    def __post_init__(self) -> None:
        if self.step_labels is not None and not isinstance(self.step_labels, tuple):
            object.__setattr__(self, "step_labels", tuple(self.step_labels))

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_error": self.first_error,
            "step_labels": None if self.step_labels is None else list(self.step_labels),
            "final_answer_correct": self.final_answer_correct,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Gold:
        fe = d.get("first_error")
        labels = d.get("step_labels")
        fac = d.get("final_answer_correct")
        return cls(
            first_error=None if fe is None else int(fe),
            step_labels=None if labels is None else tuple(bool(x) for x in labels),
            final_answer_correct=None if fac is None else bool(fac),
        )


@dataclass(frozen=True)
class Example:
    problem: Problem
    solution: Solution | None = None
    gold: Gold | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem": self.problem.to_dict(),
            "solution": None if self.solution is None else self.solution.to_dict(),
            "gold": None if self.gold is None else self.gold.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Example:
        sol = d.get("solution")
        gold = d.get("gold")
        return cls(
            problem=Problem.from_dict(d["problem"]),
            solution=None if sol is None else Solution.from_dict(sol),
            gold=None if gold is None else Gold.from_dict(gold),
        )


@dataclass(frozen=True)
class Result:
    """One evaluated item. An exception while critiquing it is recorded in ``error`` (and
    ``critique`` is ``None``); it does not stop the run."""

    example: Example
    critique: Critique | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "example": self.example.to_dict(),
            "critique": None if self.critique is None else self.critique.to_dict(),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        crit = d.get("critique")
        return cls(
            example=Example.from_dict(d["example"]),
            critique=None if crit is None else Critique.from_dict(crit),
            error=d.get("error"),
        )
