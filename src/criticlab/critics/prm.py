"""Process reward model (PRM) critics: step scores from a scoring engine, judged against a
threshold.

The scores come from a step scorer (:class:`~criticlab.models.base.StepScorer`): normally the
store's :class:`~criticlab.cache.CachedModel` around a :class:`~criticlab.models.prm.PRMModel`
(model spec ``prm:DIR``), so a rerun, or another Ray worker, reads them from the store instead
of running the model again. How a PRM reads a solution (the format, the heads, the token
positions) is the engine's business: :mod:`criticlab.models.prm`.

A step is "incorrect" when its score is below ``threshold``; ``first_error`` is the first such
step and ``Critique.score`` the lowest step score. ProcessBench's protocol picks the threshold
that maximises F1 on its GSM8K subset and reuses it on the other subsets:
:func:`choose_threshold` picks it, :func:`with_threshold` re-applies it to critiques already
made (no model call).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from criticlab.critics.base import first_incorrect, overall_from_first_error
from criticlab.errors import ConfigError, ModelError
from criticlab.metrics import processbench
from criticlab.models.base import LanguageModel, StepScorer
from criticlab.models.prm import TASKS, detect_task
from criticlab.types import Critique, Example, Gold, Problem, Result, Solution, StepVerdict

if TYPE_CHECKING:
    from criticlab.store import Store

__all__ = ["TASKS", "PRMCritic", "choose_threshold", "critique_from_scores", "detect_task",
           "with_threshold"]


class PRMCritic:
    """Step verdicts from the step scores of ``scorer`` (see the module docstring): a model
    object with ``name`` and ``async score_steps(question, steps)``, normally the
    ``CachedModel`` a job built for the model spec ``prm:DIR``. ``name`` defaults to the
    scorer's (``prm:DIR``). The critique's usage is the scores': a call, or ``cached=1`` when
    the store answered."""

    def __init__(self, scorer: StepScorer | LanguageModel, *, threshold: float = 0.5,
                 name: str | None = None) -> None:
        if not isinstance(scorer, StepScorer):
            raise ConfigError(f"{getattr(scorer, 'name', scorer)!r} does not score steps: a "
                              "PRM critic needs a process reward model (prm:DIR)")
        self.scorer = scorer
        self.threshold = threshold
        self.name = name or scorer.name

    @classmethod
    def math_shepherd(cls, model_spec: str | Path, *, threshold: float = 0.5,
                      store: Store | None = None) -> PRMCritic:
        """A critic reading a Math-Shepherd PRM in its own format
        (:meth:`PRMModel.math_shepherd <criticlab.models.prm.PRMModel.math_shepherd>`), its
        scores cached in ``store`` when one is given."""
        from criticlab.cache import CachedModel
        from criticlab.models.prm import PRMModel

        return cls(CachedModel(PRMModel.math_shepherd(model_spec), store), threshold=threshold)

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        if not solution.steps:
            return Critique(verdict=None, critic=self.name, feedback="no steps to score")
        scored = await self.scorer.score_steps(problem.question, solution.steps)
        if len(scored.scores) != len(solution.steps):
            raise ModelError(f"{self.scorer.name} gave {len(scored.scores)} scores for "
                             f"{len(solution.steps)} steps")
        crit = critique_from_scores(scored.scores, self.threshold, critic=self.name)
        return replace(crit, usage=scored.usage)


def _running_minima(scores: Sequence[float]) -> list[tuple[int, float]]:
    """``(index, score)`` of each step scoring below every step before it."""
    out: list[tuple[int, float]] = []
    for j, s in enumerate(scores):
        if not out or s < out[-1][1]:
            out.append((j, float(s)))
    return out


def critique_from_scores(
    scores: Sequence[float], threshold: float, *, critic: str = ""
) -> Critique:
    """Step verdicts from step scores: "incorrect" when ``score < threshold``; ``first_error``
    is the first such step, ``score`` the lowest step score."""
    steps = tuple(
        StepVerdict(i, "incorrect" if s < threshold else "correct", score=float(s))
        for i, s in enumerate(scores))
    first = first_incorrect(steps)
    return Critique(
        steps=steps, first_error=first,
        verdict=overall_from_first_error(first) if steps else None,
        score=min(scores) if scores else None, critic=critic,
        feedback=f"threshold {threshold:g}",
    )


def with_threshold(critique: Critique, threshold: float) -> Critique:
    """A PRM critique re-judged at another threshold (same scores, usage and name)."""
    scores = [s.score for s in critique.steps]
    if not scores or any(s is None for s in scores):
        return critique
    new = critique_from_scores([float(s) for s in scores if s is not None], threshold,
                               critic=critique.critic)
    return replace(new, usage=critique.usage, raw=critique.raw)


def choose_threshold(
    scores_by_item: Sequence[Sequence[float]], gold_first_errors: Sequence[int | None]
) -> float:
    """The threshold that maximises ProcessBench F1 (``metrics.processbench``) over the items.

    ``gold_first_errors``: the 0-based first wrong step per item, ``None`` (or -1) when all
    steps are right. Candidates are the midpoints between consecutive distinct scores; ties
    go to the smallest threshold. With fewer than two distinct scores there is nothing to
    choose and 0.5 is returned.
    """
    if len(scores_by_item) != len(gold_first_errors):
        raise ValueError("scores_by_item and gold_first_errors differ in length")
    distinct = sorted({float(s) for item in scores_by_item for s in item})
    candidates = [(a + b) / 2 for a, b in itertools.pairwise(distinct)]
    if not candidates:
        return 0.5
    examples = [
        Example(Problem(str(i), ""), gold=Gold(first_error=None, final_answer_correct=True)
                if g is None or g < 0 else Gold(first_error=g))
        for i, g in enumerate(gold_first_errors)
    ]
    # An item's prediction at t is its first step scoring below t; it changes only where t
    # passes one of the item's running minima. Sweeping t upwards through those events keeps
    # every item's result current without rescanning all scores at every candidate.
    events = sorted((v, i, j) for i, item in enumerate(scores_by_item)
                    for j, v in _running_minima(item))
    verdicts: dict[int, Critique] = {-1: Critique(verdict="correct")}
    results = [Result(ex, verdicts[-1]) for ex in examples]
    best, best_f1, f1, k = candidates[0], -1.0, 0.0, 0
    for n, t in enumerate(candidates):
        moved = n == 0
        while k < len(events) and events[k][0] < t:
            _, i, j = events[k]
            crit = verdicts.setdefault(j, Critique(first_error=j, verdict="incorrect"))
            results[i] = Result(examples[i], crit)
            k, moved = k + 1, True
        if moved:
            f1 = float(processbench(results)["f1"])
        if f1 > best_f1:
            best, best_f1 = t, f1
    return best
