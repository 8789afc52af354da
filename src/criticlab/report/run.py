"""Reading one eval run directory (what ``criticlab eval`` writes) for the report.

A run directory holds ``results.jsonl`` (one ``Result.to_dict()`` per line, required),
``metrics.json`` (the computed metrics, optional: a run that stopped early has none) and
``config.json`` (the resolved run config, optional). Reading checks the structure and raises
one :class:`~criticlab.errors.InputError` naming file, line and field for the first bad
value; it does not recompute metrics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from criticlab.errors import InputError
from criticlab.types import Result

RESULTS = "results.jsonl"
METRICS = "metrics.json"
CONFIG = "config.json"

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
        for source in (self.metrics or {}, self.config):
            value = source.get(key)
            if value:
                return str(value)
        return ""

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


def load_run(path: str | Path) -> Run:
    """Read a run directory. Raises ``InputError`` when it is missing, has no
    ``results.jsonl``, or holds a malformed line or metric (file, line and field named)."""
    root = Path(path)
    if not root.exists():
        raise InputError("no such run directory", path=str(root))
    if not root.is_dir():
        raise InputError("is a file; give the run directory that `criticlab eval` wrote",
                         path=str(root))
    results_path = root / RESULTS
    if not results_path.is_file():
        raise InputError(f"no {RESULTS} here: not a `criticlab eval` run directory",
                         path=str(root))
    results = tuple(_read_results(results_path))
    metrics = _read_json(root / METRICS)
    if metrics is not None:
        _check_metrics(metrics, str(root / METRICS))
    config = _read_json(root / CONFIG) or {}
    return Run(root, results, metrics, config)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", path=str(path)) from None
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=str(path),
                         line=e.lineno) from None
    if not isinstance(value, dict):
        raise InputError(f"must be a JSON object, not {_kind(value)}", path=str(path))
    return value


def _read_results(path: Path) -> list[Result]:
    out: list[Result] = []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                d = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise InputError("contains bytes that are not valid UTF-8", path=str(path),
                                 line=lineno) from None
            except json.JSONDecodeError as e:
                raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=str(path),
                                 line=lineno) from None
            try:
                _check_result(d)
                out.append(Result.from_dict(d))
            except InputError as e:
                raise InputError(e.message, path=str(path), line=lineno, field=e.field) from None
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(f"not a result: {e}", path=str(path), line=lineno) from None
    return out


def _kind(value: Any) -> str:
    return "null" if value is None else {
        dict: "an object", list: "a list", str: "a string", bool: "a boolean",
        int: "a number", float: "a number",
    }.get(type(value), type(value).__name__)


def _need(d: Mapping[str, Any], key: str, where: str, types: tuple[type, ...],
          what: str, *, optional: bool = False) -> Any:
    name = f"{where}.{key}" if where else key
    if key not in d:
        if optional:
            return None
        raise InputError("missing", field=name)
    value = d[key]
    if value is None and optional:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise InputError(f"must be {what}, not {_kind(value)}", field=name)
    return value


def _check_result(d: Any) -> None:
    """The structure ``Result.from_dict`` relies on, so that a bad line names its field."""
    if not isinstance(d, dict):
        raise InputError(f"a result must be a JSON object, not {_kind(d)}")
    ex = _need(d, "example", "", (dict,), "an object")
    problem = _need(ex, "problem", "example", (dict,), "an object")
    _need(problem, "id", "example.problem", (str, int), "a string")
    _need(problem, "question", "example.problem", (str,), "a string")
    _need(problem, "metadata", "example.problem", (dict,), "an object", optional=True)
    sol = _need(ex, "solution", "example", (dict,), "an object", optional=True)
    if sol is not None:
        steps = _need(sol, "steps", "example.solution", (list,), "a list of strings")
        for i, s in enumerate(steps):
            if not isinstance(s, str):
                raise InputError(f"must be a string, not {_kind(s)}",
                                 field=f"example.solution.steps[{i}]")
    gold = _need(ex, "gold", "example", (dict,), "an object", optional=True)
    if gold is not None:
        _need(gold, "first_error", "example.gold", (int,), "an integer", optional=True)
    crit = _need(d, "critique", "", (dict,), "an object", optional=True)
    if crit is not None:
        _need(crit, "first_error", "critique", (int,), "an integer", optional=True)
        verdict = crit.get("verdict")
        if verdict not in (None, "correct", "incorrect"):
            raise InputError(f"must be 'correct', 'incorrect' or null, not {verdict!r}",
                             field="critique.verdict")
        for i, sv in enumerate(_need(crit, "steps", "critique", (list,), "a list",
                                     optional=True) or ()):
            where = f"critique.steps[{i}]"
            if not isinstance(sv, dict):
                raise InputError(f"must be an object, not {_kind(sv)}", field=where)
            _need(sv, "index", where, (int,), "an integer")
            if sv.get("verdict") not in ("correct", "incorrect", "unknown"):
                raise InputError("must be 'correct', 'incorrect' or 'unknown'",
                                 field=f"{where}.verdict")
        _need(crit, "usage", "critique", (dict,), "an object", optional=True)
    _need(d, "error", "", (str,), "a string", optional=True)


def _check_metrics(m: Mapping[str, Any], path: str) -> None:
    def number(section: Mapping[str, Any], key: str, where: str) -> None:
        value = section.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InputError(f"must be a number or null, not {_kind(value)}", path=path,
                             field=f"{where}{key}")

    def section(key: str) -> Mapping[str, Any] | None:
        value = m.get(key)
        if value is not None and not isinstance(value, dict):
            raise InputError(f"must be an object or null, not {_kind(value)}", path=path,
                             field=key)
        return value

    for key in _TOP_NUMBERS:
        number(m, key, "")
    for name, keys in _SECTIONS.items():
        sec = section(name)
        for key in keys if sec else ():
            number(sec or {}, key, f"{name}.")
    pb = section("processbench")
    for subset, values in (pb or {}).items():
        if not isinstance(values, dict):
            raise InputError(f"must be an object, not {_kind(values)}", path=path,
                             field=f"processbench.{subset}")
        for key in _PB_KEYS:
            number(values, key, f"processbench.{subset}.")
