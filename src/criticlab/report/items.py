"""Per-item outcomes (gold vs predicted first error) and the compact JSON that the report's
item browser renders. Indices are 0-based; -1 means "no wrong step" (ProcessBench's label)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from criticlab.metrics import gold_index, prediction
from criticlab.types import Result

Status = Literal["hit", "miss", "unparsed", "error", "unlabelled"]


@dataclass(frozen=True)
class Outcome:
    """``gold``/``pred`` in ProcessBench's form (see :mod:`criticlab.metrics`): the first
    wrong step, -1 for none, ``None`` when unknown (no label; no usable prediction). ``miss``:
    there is a gold label and the critic did not match it; an unparsed or failed critique
    counts as a miss, as in ProcessBench's protocol."""

    gold: int | None
    pred: int | None
    status: Status

    @property
    def miss(self) -> bool:
        return self.gold is not None and self.status != "hit"

    @property
    def unparsed(self) -> bool:
        return self.status in ("unparsed", "error")


def outcome(r: Result) -> Outcome:
    gold, pred = gold_index(r), prediction(r)
    status: Status
    if r.critique is None:
        status = "error"
    elif not r.critique.parsed:
        status = "unparsed"
    elif gold is None:
        status = "unlabelled"
    else:
        status = "hit" if pred == gold else "miss"
    return Outcome(gold, pred, status)


def subset_of(r: Result, default: str = "") -> str:
    value = r.example.problem.metadata.get("subset")
    return str(value) if value else default


def items_payload(runs: Sequence[tuple[str, Sequence[Result]]], default_subset: str = ""
                  ) -> dict[str, Any]:
    """The item browser's data: shared examples (problem and steps, stored once even when
    several runs critiqued them) and per-run items."""
    examples: list[dict[str, Any]] = []
    index: dict[tuple[Any, ...], int] = {}
    out_runs: list[dict[str, Any]] = []
    for label, results in runs:
        items: list[dict[str, Any]] = []
        for r in results:
            ex = r.example
            steps = list(ex.solution.steps) if ex.solution else []
            key = (ex.problem.id, ex.problem.question, tuple(steps))
            if key not in index:
                index[key] = len(examples)
                examples.append(_example(r, steps, default_subset))
            items.append(_item(r, index[key]))
        out_runs.append({"label": label, "items": items})
    return {"examples": examples, "runs": out_runs}


def _example(r: Result, steps: list[str], default_subset: str) -> dict[str, Any]:
    ex = r.example
    d: dict[str, Any] = {"id": ex.problem.id, "s": subset_of(r, default_subset),
                         "q": ex.problem.question, "st": steps}
    if ex.problem.reference_answer:
        d["ra"] = ex.problem.reference_answer
    if ex.solution and ex.solution.final_answer:
        d["fa"] = ex.solution.final_answer
    if ex.solution and ex.solution.source:
        d["by"] = ex.solution.source
    return d


def _item(r: Result, example: int) -> dict[str, Any]:
    o = outcome(r)
    c = r.critique
    d: dict[str, Any] = {"x": example, "g": o.gold, "p": o.pred, "k": o.status,
                         "m": int(o.miss)}
    if c is not None and c.verdict:
        d["v"] = c.verdict
    if r.error:
        d["e"] = r.error
    if c is not None:
        if c.feedback:
            d["f"] = c.feedback
        if c.raw and c.raw.strip() != c.feedback.strip():
            d["r"] = c.raw
        if c.critic:
            d["c"] = c.critic
        notes = [[sv.index, sv.verdict, sv.explanation] for sv in c.steps
                 if sv.explanation or sv.verdict == "incorrect"]
        if notes:
            d["sv"] = notes
    return d
