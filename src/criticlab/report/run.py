"""Reading one run directory for the report: what ``criticlab eval`` writes here, what
``refine`` and ``select`` write in :mod:`criticlab.report.loop_runs`; :func:`load_run` tells
them apart.

An eval run directory holds ``results.jsonl`` (one ``Result.to_dict()`` per line, required),
``metrics.json`` (the computed metrics, optional: a run that stopped early has none) and
``config.json`` (the resolved run config, optional). Reading checks the structure and raises
one :class:`~criticlab.errors.InputError` naming file, line and field for the first bad
value; it does not recompute metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from criticlab.errors import InputError
from criticlab.report.jsonio import (
    CONFIG,
    METRICS,
    check_critique,
    check_numbers,
    check_problem,
    check_solution,
    kind,
    meta,
    need,
    need_object,
    read_json,
    read_jsonl,
    section,
)
from criticlab.report.loop_runs import (
    SELECTIONS,
    TRAJECTORIES,
    RefineRun,
    SelectRun,
    load_refine,
    load_select,
)
from criticlab.types import Result

RESULTS = "results.jsonl"
__all__ = ["CONFIG", "METRICS", "RESULTS", "SELECTIONS", "TRAJECTORIES", "AnyRun", "Run",
           "load_run", "run_kind"]

# Numeric leaves of metrics.json that the report reads: each must be a number or null.
_PB_KEYS = ("n", "n_err", "n_cor", "acc_err", "acc_cor", "f1")
_TOP_NUMBERS = ("n", "errors", "parse_failure_rate", "elapsed_s")
_SECTIONS: dict[str, tuple[str, ...]] = {
    "judgment": ("n", "accuracy", "precision", "recall", "f1", "auroc"),
    "calibration": ("ece", "brier", "auroc"),
    "steps": ("precision", "recall", "f1"),
    "usage": ("prompt_tokens", "completion_tokens", "calls", "cached"),
}


@dataclass(frozen=True)
class Run:
    """One eval run: its results in file order, and its metrics and config when present."""

    path: Path
    results: tuple[Result, ...]
    metrics: Mapping[str, Any] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    def _meta(self, key: str) -> str:
        return meta(self.metrics, self.config, key)

    @property
    def critic(self) -> str:
        return self._meta("critic") or next(
            (r.critique.critic for r in self.results if r.critique and r.critique.critic), ""
        )

    @property
    def model(self) -> str:
        return self._meta("model")

    @property
    def benchmark(self) -> str:
        return self._meta("benchmark")

    @property
    def label(self) -> str:
        """``critic · model``, or the directory name when neither is known."""
        parts = [p for p in (self.critic, self.model) if p]
        return " · ".join(parts) if parts else self.path.name

    @property
    def decoding(self) -> str:
        """Greedy or maj@N, from the config's ``samples`` (or its own ``decoding``)."""
        if self.config.get("decoding"):
            return str(self.config["decoding"])
        samples = self.config.get("samples")
        if isinstance(samples, int) and samples > 1:
            return f"maj@{samples}"
        return "greedy" if samples in (1, None) and self.config else ""


AnyRun = Run | RefineRun | SelectRun

_KINDS = ((RESULTS, "eval"), (TRAJECTORIES, "refine"), (SELECTIONS, "select"))


def run_kind(root: Path) -> str:
    """``eval``, ``refine`` or ``select``: which of ``results.jsonl``, ``trajectories.jsonl``
    and ``selections.jsonl`` the directory holds. Raises ``InputError`` for none or several."""
    found = [(name, k) for name, k in _KINDS if (root / name).is_file()]
    if not found:
        raise InputError(f"no {RESULTS} here (nor {TRAJECTORIES} or {SELECTIONS}): not a run "
                         "directory of `criticlab eval`, `refine` or `select`", path=str(root))
    if len(found) > 1:
        raise InputError(f"holds both {found[0][0]} and {found[1][0]}: cannot tell which kind "
                         "of run this is; keep one run per directory", path=str(root))
    return found[0][1]


def load_run(path: str | Path) -> AnyRun:
    """Read a run directory of ``criticlab eval`` (:class:`Run`), ``refine``
    (:class:`~criticlab.report.loop_runs.RefineRun`) or ``select``
    (:class:`~criticlab.report.loop_runs.SelectRun`), told apart by their lines file. Raises
    ``InputError`` when it is missing, has none of those files, or holds a malformed line or
    metric (file, line and field named)."""
    root = Path(path)
    if not root.exists():
        raise InputError("no such run directory", path=str(root))
    if not root.is_dir():
        raise InputError("is a file; give the run directory that `criticlab eval` (or `refine`,"
                         " `select`) wrote", path=str(root))
    kind = run_kind(root)
    if kind == "refine":
        return load_refine(root)
    if kind == "select":
        return load_select(root)
    results = tuple(read_jsonl(root / RESULTS, _result, "a result"))
    metrics = read_json(root / METRICS)
    if metrics is not None:
        _check_metrics(metrics, str(root / METRICS))
    config = read_json(root / CONFIG) or {}
    return Run(root, results, metrics, config)


def _result(d: Any) -> Result:
    _check_result(d)
    return Result.from_dict(d)


def _check_result(d: Any) -> None:
    """The structure ``Result.from_dict`` relies on, so that a bad line names its field."""
    need_object(d, "a result")
    ex = need(d, "example", "", (dict,), "an object")
    check_problem(ex, "example")
    sol = need(ex, "solution", "example", (dict,), "an object", optional=True)
    if sol is not None:
        check_solution(sol, "example.solution")
    gold = need(ex, "gold", "example", (dict,), "an object", optional=True)
    if gold is not None:
        need(gold, "first_error", "example.gold", (int,), "an integer", optional=True)
    crit = need(d, "critique", "", (dict,), "an object", optional=True)
    if crit is not None:
        check_critique(crit, "critique")
    need(d, "error", "", (str,), "a string", optional=True)


def _check_metrics(m: Mapping[str, Any], path: str) -> None:
    check_numbers(m, _TOP_NUMBERS, path)
    for name, keys in _SECTIONS.items():
        check_numbers(section(m, name, path) or {}, keys, path, f"{name}.")
    for subset, values in (section(m, "processbench", path) or {}).items():
        if not isinstance(values, dict):
            raise InputError(f"must be an object, not {kind(values)}", path=path,
                             field=f"processbench.{subset}")
        check_numbers(values, _PB_KEYS, path, f"processbench.{subset}.")
