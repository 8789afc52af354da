"""Rule-based critique rewards as plain callables in TRL's reward signature
(``reward(completions, **kwargs) -> list[float]``; TRL passes ``prompts`` and every dataset
column, e.g. ``gold_first_error`` and ``gold_verdict`` of :func:`criticlab.label.export.rl_rows`).

- :func:`format_reward`: the critique can be read in its style (a ``\\boxed{}`` index in range
  for ``processbench``; ``Step k: verdict`` / ``Overall:`` lines for ``stepwise``).
- :func:`verdict_reward`: the overall verdict (correct / incorrect) matches the gold one.
- :func:`first_error_reward`: the first-error index matches (``partial=True``: ``1 - |d|/n``
  for a near miss, clipped at 0).
- :func:`shaped_reward`: a weighted sum of the three, with partial credit for a half-formed
  critique, so that a tiny model whose samples all fail the exact checks still gets a signal
  (a pass/fail reward gave all-zero rewards, hence no GRPO advantage, on SmolLM2-135M).
- :class:`RefinementReward`: Critique-RL stage II: an actor refines the solution with the
  critique; the reward is whether the refined answer is right, plus the verdict reward as a
  regulariser.

The style of a row is its ``style`` column when there is one, else read from the prompt
(ProcessBench's ``<paragraph_0>`` tags, else ``stepwise``); the step count is its ``n_steps``
column, else counted in the prompt. Options are keyword arguments: pass
``functools.partial(first_error_reward, partial=True)`` to TRL. An unreadable critique scores
0 on every term; it is never taken for a "correct" verdict.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from criticlab.critics.prompted import STYLES
from criticlab.errors import ConfigError
from criticlab.grading import same_answer, solution_answer
from criticlab.metrics import critique_prediction
from criticlab.models.base import GenerateConfig, LanguageModel
from criticlab.types import Critique, Problem, Solution

__all__ = ["SHAPED_WEIGHTS", "RefinementReward", "first_error_reward", "format_reward",
           "read_critique", "shaped_reward", "verdict_reward"]

SHAPED_WEIGHTS = (0.2, 0.4, 0.4)
"""Default (format, verdict, first error) weights of :func:`shaped_reward`."""

_PARAGRAPH = re.compile(r"<paragraph_(\d+)>")
_STEP_LINE = re.compile(r"^Step (\d+):", re.MULTILINE)


def text_of(message: Any) -> str:
    """A prompt or completion as text: a string as is, a conversation as its last
    message's content."""
    if isinstance(message, str):
        return message
    if isinstance(message, Sequence) and message and isinstance(message[-1], Mapping):
        return str(message[-1].get("content", ""))
    return ""


def style_of(prompt: str) -> str:
    return "processbench" if "<paragraph_0>" in prompt else "stepwise"


def count_steps(prompt: str, style: str) -> int:
    """The number of solution steps rendered in ``prompt``: the highest ProcessBench
    paragraph tag + 1, or the first unbroken run of ``Step 1:``, ``Step 2:``... lines
    (the template's own example lines come after it and start again from 1)."""
    if style == "processbench":
        return max((int(m) + 1 for m in _PARAGRAPH.findall(prompt)), default=0)
    n = 0
    for m in _STEP_LINE.finditer(prompt):
        if int(m.group(1)) != n + 1:
            break
        n += 1
    return n


def read_critique(completion: Any, prompt: Any, *, style: str | None = None,
                  n_steps: int | None = None) -> Critique:
    """Parse one completion the way the critic of its style would."""
    ptext = text_of(prompt)
    style = style or style_of(ptext)
    if style not in STYLES:
        raise ConfigError(f"unknown critique style {style!r}; choose from {sorted(STYLES)}")
    n = n_steps if n_steps is not None else count_steps(ptext, style)
    return STYLES[style].parse(text_of(completion), n, style)


def _column(kwargs: Mapping[str, Any], name: str, n: int) -> list[Any]:
    values = kwargs.get(name)
    if values is None:
        return [None] * n
    if len(values) != n:
        raise ConfigError(f"reward column {name!r} has {len(values)} values for {n} completions")
    return list(values)


def _rows(completions: Sequence[Any], kwargs: Mapping[str, Any]
          ) -> list[tuple[Critique, dict[str, Any]]]:
    n = len(completions)
    prompts = _column(kwargs, "prompts", n)
    styles, sizes = _column(kwargs, "style", n), _column(kwargs, "n_steps", n)
    golds, verdicts = _column(kwargs, "gold_first_error", n), _column(kwargs, "gold_verdict", n)
    out = []
    for i, c in enumerate(completions):
        crit = read_critique(c, prompts[i], style=styles[i], n_steps=sizes[i])
        gold = golds[i]
        if gold is None and verdicts[i] is None:
            raise ConfigError("reward functions need a gold_first_error or gold_verdict column "
                              "(criticlab label export --format rl)")
        verdict = verdicts[i] or ("correct" if gold == -1 else "incorrect")
        out.append((crit, {"gold": gold, "verdict": verdict}))
    return out


def _format_score(crit: Critique, partial: bool) -> float:
    if crit.parsed and critique_prediction(crit) is not None:
        return 1.0
    if not partial:
        return 0.0
    if crit.parsed:  # stepwise lines read, but no verdict or first error follows from them
        return 0.5
    # A box with an unreadable or out-of-range index, or a step line in the wrong shape.
    marker = "\\boxed" if crit.critic == "processbench" else "Step "
    return 0.5 if marker in crit.raw else 0.0


def _verdict_score(crit: Critique, verdict: str) -> float:
    pred = critique_prediction(crit)
    if pred is None:
        return 0.0
    return 1.0 if ("correct" if pred == -1 else "incorrect") == verdict else 0.0


def _first_error_score(crit: Critique, gold: int | None, partial: bool) -> float:
    pred = critique_prediction(crit)
    if pred is None or gold is None:
        return 0.0
    if pred == gold:
        return 1.0
    if not partial or pred == -1 or gold == -1:
        return 0.0
    n = max(len(crit.steps), 1)
    return max(0.0, 1.0 - abs(pred - gold) / n)


GOLD_REWARDS = ("shaped", "format", "verdict", "first_error", "first_error_partial")


def critique_reward(name: str, crit: Critique, gold: int | None, verdict: str | None = None, *,
                    weights: tuple[float, float, float] = SHAPED_WEIGHTS) -> float:
    """The reward ``name`` (:data:`GOLD_REWARDS`) of a critique already read, against the
    gold first error (-1: no error) or the gold ``verdict``: what the TRL reward functions
    below give each completion, for callers that hold critiques (``criticlab serve``)."""
    verdict = verdict or ("correct" if gold == -1 else "incorrect")
    if name == "format":
        return _format_score(crit, False)
    if name == "verdict":
        return _verdict_score(crit, verdict)
    if name in ("first_error", "first_error_partial"):
        return _first_error_score(crit, gold, name == "first_error_partial")
    if name != "shaped":
        raise ConfigError(f"unknown reward {name!r}; use one of: {', '.join(GOLD_REWARDS)}")
    return _shaped(crit, gold, verdict, weights, True)


def _shaped(crit: Critique, gold: int | None, verdict: str,
            weights: tuple[float, float, float], partial: bool) -> float:
    wf, wv, we = weights
    return (wf * _format_score(crit, partial) + wv * _verdict_score(crit, verdict)
            + we * _first_error_score(crit, gold, partial))


def format_reward(completions: Sequence[Any], *, partial: bool = False,
                  **kwargs: Any) -> list[float]:
    """1 when the critique reads in its style with a prediction (an index, or -1), else 0.
    ``partial=True``: 0.5 for a half-formed critique (a ``\\boxed{}`` that is not an index in
    range; stepwise lines from which no verdict follows)."""
    return [_format_score(c, partial) for c, _ in _rows(completions, kwargs)]


def verdict_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1 when the critique's overall verdict (no error / some error) is the gold one."""
    return [_verdict_score(c, g["verdict"]) for c, g in _rows(completions, kwargs)]


def first_error_reward(completions: Sequence[Any], *, partial: bool = False,
                       **kwargs: Any) -> list[float]:
    """1 for the gold first-error index (-1 for a right solution), else 0; ``partial=True``
    gives ``max(0, 1 - |pred - gold| / n_steps)`` when both name a step."""
    return [_first_error_score(c, g["gold"], partial) for c, g in _rows(completions, kwargs)]


def shaped_reward(completions: Sequence[Any], *,
                  weights: tuple[float, float, float] = SHAPED_WEIGHTS, partial: bool = True,
                  **kwargs: Any) -> list[float]:
    """``weights`` · (format, verdict, first error), each term with partial credit when
    ``partial``. Default weights sum to 1, so the reward is in [0, 1]."""
    return [_shaped(c, g["gold"], g["verdict"], weights, partial)
            for c, g in _rows(completions, kwargs)]


class RefinementReward:
    """Critique-RL stage II: the actor rewrites the solution with the critique's feedback
    (criticlab's global refinement prompt); the reward is 1 when the final answer is then
    right, plus ``verdict_weight`` × :func:`verdict_reward` so the critic keeps its
    discrimination. A critique that accepts the solution keeps it unchanged (no actor call);
    an unreadable one earns 0 on both terms.

    Rows need the question, the steps and the reference answer in the columns named by
    ``problem_column``, ``steps_column`` and ``answer_column`` (:func:`refinement_rows`).
    ``await reward(completions, **kwargs)`` is what TRL's GRPOTrainer calls;
    :meth:`sync` runs it from plain code.
    """

    def __init__(self, actor: LanguageModel, *, answer_column: str = "reference_answer",
                 problem_column: str = "problem", steps_column: str = "steps",
                 verdict_weight: float = 0.5, config: GenerateConfig | None = None) -> None:
        from criticlab.infer.refine import GlobalRefiner

        self.refiner = GlobalRefiner(actor, config or GenerateConfig(max_tokens=512))
        self.answer_column = answer_column
        self.problem_column = problem_column
        self.steps_column = steps_column
        self.verdict_weight = verdict_weight

    async def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        n = len(completions)
        cols = {}
        for name in (self.answer_column, self.problem_column, self.steps_column):
            if kwargs.get(name) is None:
                raise ConfigError(f"RefinementReward needs a {name!r} column in the dataset")
            cols[name] = _column(kwargs, name, n)
        rows = _rows(completions, kwargs)
        outcomes = await asyncio.gather(*(
            self._outcome(crit, cols[self.problem_column][i], cols[self.steps_column][i],
                          cols[self.answer_column][i])
            for i, (crit, _) in enumerate(rows)))
        return [o + self.verdict_weight * _verdict_score(c, g["verdict"])
                for o, (c, g) in zip(outcomes, rows, strict=True)]

    def sync(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        """The reward from synchronous code (not from inside a running event loop)."""
        return asyncio.run(self(completions, **kwargs))

    async def _outcome(self, crit: Critique, question: str, steps: Sequence[str],
                       reference: str) -> float:
        pred = critique_prediction(crit)
        if pred is None:
            return 0.0
        solution = Solution(tuple(steps))
        if pred != -1:
            if not crit.feedback:
                crit = replace(crit, feedback=f"Step {pred + 1} is wrong.")
            solution, _ = await self.refiner.refine(Problem("refine", question), solution, crit)
        return 1.0 if same_answer(solution_answer(solution), str(reference)) else 0.0


def refinement_rows(examples: Sequence[Any], style: str = "processbench") -> list[dict[str, Any]]:
    """:func:`criticlab.label.export.rl_rows` plus the ``problem``, ``steps`` and
    ``reference_answer`` columns :class:`RefinementReward` reads."""
    from criticlab.label.export import rl_rows

    rows = rl_rows(examples, style)
    for row, ex in zip(rows, examples, strict=True):
        assert ex.solution is not None, f"{ex.problem.id} has no solution"
        if ex.problem.reference_answer is None:
            raise ConfigError(f"{ex.problem.id} has no reference answer to reward against")
        row.update(problem=ex.problem.question, steps=list(ex.solution.steps),
                   reference_answer=ex.problem.reference_answer)
    return rows
