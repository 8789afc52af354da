"""Rows in TRL's dataset formats, from labelled solutions and (optionally) critiques.

- SFT, conversational: ``{"messages": [user: critique prompt, assistant: critique]}``.
- Preference: ``{"prompt": [user message], "chosen": [assistant], "rejected": [assistant]}``,
  critiques of one solution ranked by :func:`rule_reward` (as Critic-V did for DPO).
- Stepwise supervision (TRL's PRM format): ``{"prompt": problem, "completions": steps,
  "labels": [bool per step]}``; a step is labelled right when it comes before the first
  error (Math-Shepherd's convention: every step from the first error on is wrong).
- RL prompts: ``{"prompt": [user message], "gold_first_error": int (-1 = none),
  "gold_verdict": "correct" | "incorrect"}``, the columns reward functions receive.

Each format is written as JSONL and, with ``datasets`` installed, as a ``Dataset`` saved to
disk; both load back with ``datasets.load_dataset``/``load_from_disk`` unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from criticlab.critics.prompted import PromptedCritic
from criticlab.errors import ConfigError
from criticlab.jobs import write_jsonl
from criticlab.metrics import critique_prediction
from criticlab.models.scripted import ScriptedModel
from criticlab.types import Critique, Example

FORMATS = ("sft", "preference", "stepwise", "rl")


def gold_first_error(ex: Example) -> int:
    """The gold label in ProcessBench's form (-1: every step is right)."""
    if ex.gold is None:
        raise ConfigError(f"{ex.problem.id} has no gold label to export")
    return -1 if ex.gold.first_error is None else ex.gold.first_error


def rule_reward(critique: Critique | None, gold: int) -> float:
    """A rule-based critique reward: 1 for the exact first-error index (or -1 when the
    solution is right), 0.5 for the right overall verdict with a wrong index, 0 for the wrong
    verdict, -0.5 for an unreadable critique (so format failures rank last)."""
    if critique is None or not critique.parsed:
        return -0.5
    pred = critique_prediction(critique)
    if pred is None:
        return -0.5
    if pred == gold:
        return 1.0
    return 0.5 if (pred == -1) == (gold == -1) else 0.0


def _prompt(ex: Example, style: str) -> list[dict[str, str]]:
    assert ex.solution is not None, f"{ex.problem.id} has no solution"
    renderer = PromptedCritic(ScriptedModel([]), style)
    return [m.to_dict() for m in renderer.messages(ex.problem, ex.solution)]


def reference_critique(ex: Example, style: str = "processbench") -> str:
    """A minimal critique text that states the gold label in ``style``'s format, for SFT
    when no teacher critique was kept."""
    assert ex.solution is not None
    gold = gold_first_error(ex)
    if style == "processbench":
        where = ("No paragraph contains an error." if gold == -1 else
                 f"Paragraph {gold} is the earliest paragraph with an error.")
        return f"{where}\n\n\\boxed{{{gold}}}"
    lines = []
    for i in range(len(ex.solution.steps)):
        verdict = "correct" if gold == -1 or i < gold else "incorrect"
        if gold != -1 and i > gold:
            break
        lines.append(f"Step {i + 1}: {verdict} - "
                     + ("this step is right." if verdict == "correct" else
                        "this is the first wrong step."))
    lines.append(f"Overall: {'correct' if gold == -1 else 'incorrect'}")
    return "\n".join(lines)


def sft_rows(examples: Sequence[Example], critiques: Mapping[str, Sequence[Critique]] | None = None,
             style: str = "processbench") -> list[dict[str, Any]]:
    """One row per example: the best-rewarded kept critique's text when given, else the
    reference critique."""
    rows = []
    for ex in examples:
        kept = (critiques or {}).get(ex.problem.id, ())
        gold = gold_first_error(ex)
        best = max(kept, key=lambda c: rule_reward(c, gold), default=None)
        text = best.raw if best is not None and best.raw else reference_critique(ex, style)
        rows.append({"messages": [*_prompt(ex, style), {"role": "assistant", "content": text}]})
    return rows


def preference_rows(examples: Sequence[Example], critiques: Mapping[str, Sequence[Critique]],
                    style: str = "processbench") -> list[dict[str, Any]]:
    """For each example with critiques of different reward: the best as ``chosen``, the worst
    as ``rejected`` (ties keep the earlier critique). Examples without a contrast are
    skipped."""
    rows = []
    for ex in examples:
        kept = [c for c in critiques.get(ex.problem.id, ()) if c.raw]
        if len(kept) < 2:
            continue
        gold = gold_first_error(ex)
        scored = [(rule_reward(c, gold), -i, c) for i, c in enumerate(kept)]
        hi, lo = max(scored, key=lambda t: t[:2]), min(scored, key=lambda t: (t[0], t[1]))
        if hi[0] <= lo[0]:
            continue
        rows.append({"prompt": _prompt(ex, style),
                     "chosen": [{"role": "assistant", "content": hi[2].raw}],
                     "rejected": [{"role": "assistant", "content": lo[2].raw}]})
    return rows


def stepwise_rows(examples: Sequence[Example]) -> list[dict[str, Any]]:
    rows = []
    for ex in examples:
        assert ex.solution is not None
        gold = gold_first_error(ex)
        if ex.gold is not None and ex.gold.step_labels is not None:
            labels = list(ex.gold.step_labels)
        else:
            labels = [gold == -1 or i < gold for i in range(len(ex.solution.steps))]
        rows.append({"prompt": ex.problem.question, "completions": list(ex.solution.steps),
                     "labels": labels})
    return rows


def rl_rows(examples: Sequence[Example], style: str = "processbench") -> list[dict[str, Any]]:
    rows = []
    for ex in examples:
        gold = gold_first_error(ex)
        rows.append({"prompt": _prompt(ex, style), "gold_first_error": gold,
                     "gold_verdict": "correct" if gold == -1 else "incorrect"})
    return rows


def rows_for(fmt: str, examples: Sequence[Example],
             critiques: Mapping[str, Sequence[Critique]] | None = None,
             style: str = "processbench") -> list[dict[str, Any]]:
    if fmt == "sft":
        return sft_rows(examples, critiques, style)
    if fmt == "preference":
        if not critiques:
            raise ConfigError("preference rows need critiques (run `criticlab label synth`)")
        return preference_rows(examples, critiques, style)
    if fmt == "stepwise":
        return stepwise_rows(examples)
    if fmt == "rl":
        return rl_rows(examples, style)
    raise ConfigError(f"unknown export format {fmt!r}; choose from {FORMATS}")


def write_rows(rows: Iterable[Mapping[str, Any]], out: Path, *, dataset: bool = True) -> Path:
    """``out`` as JSONL and, when ``dataset`` and ``datasets`` is installed, a Dataset saved
    next to it (``out`` without its suffix). Returns the JSONL path."""
    rows = list(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(out, rows)
    if dataset:
        try:
            import datasets
        except ImportError as e:
            raise ConfigError("saving a Dataset needs datasets: pip install "
                              "'criticlab[hub]' (or pass --no-dataset)") from e
        datasets.Dataset.from_list(rows).save_to_disk(str(out.with_suffix("")))
    return out

