"""Helpers shared by the report tests and ``make_screenshot.py``: build ``Result``s and write
run directories the way ``criticlab eval`` does (results.jsonl, metrics.json, config.json)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from criticlab.metrics import compute_metrics
from criticlab.types import Critique, Example, Gold, Problem, Result, Solution, Usage


def make_result(
    ident: str, steps: Sequence[str], gold: int, pred: int | None, *, subset: str = "gsm8k",
    question: str = "What is 2 + 3 * 4?", parsed: bool = True, feedback: str = "",
    raw: str = "", error: str | None = None, critic: str = "processbench",
) -> Result:
    """One result. ``gold``/``pred`` in ProcessBench's form (-1 = no wrong step); ``pred=None``
    with ``parsed=False`` is an unparsed critique, with ``error`` a critic that raised."""
    example = Example(
        Problem(ident, question, metadata={"benchmark": "processbench", "subset": subset}),
        Solution(tuple(steps)),
        Gold(first_error=None if gold < 0 else gold, final_answer_correct=gold < 0),
    )
    if error is not None:
        return Result(example, None, error)
    if not parsed:
        critique = Critique(raw=raw or "I am not sure.", parsed=False, critic=critic,
                            usage=Usage(120, 40, 1, 0))
    else:
        assert pred is not None
        critique = Critique(
            first_error=None if pred < 0 else pred,
            verdict="correct" if pred < 0 else "incorrect",
            feedback=feedback, raw=raw or f"\\boxed{{{pred}}}", critic=critic,
            usage=Usage(120, 40, 1, 0),
        )
    return Result(example, critique)


def write_run(
    path: Path, results: Sequence[Result], *, metrics: Mapping[str, Any] | None = None,
    critic: str = "processbench", model: str = "openai:Qwen2.5-7B-Instruct",
    config: Mapping[str, Any] | None = None, elapsed_s: float = 12.5,
) -> Path:
    """A run directory as ``criticlab eval`` writes it; metrics computed by criticlab.metrics
    unless given."""
    path.mkdir(parents=True, exist_ok=True)
    with (path / "results.jsonl").open("w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
    if metrics is None:
        metrics = {**compute_metrics(results), "benchmark": "processbench", "critic": critic,
                   "model": model, "complete": True, "elapsed_s": elapsed_s}
    (path / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    cfg = {"benchmark": "processbench", "critic": critic, "model": model, "samples": 1,
           "limit": None, "out": str(path), **(config or {})}
    (path / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return path
