"""The numbers of the report's metric tables, which ``templates/eval.html.j2`` and
``macros.html.j2`` draw: formats, one run's tables, side-by-side rows (best value marked) and
the published ProcessBench numbers. Values come from each run's ``metrics.json``; nothing is
recomputed except the parse-failure rate and usage of a run that has no ``metrics.json``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from criticlab.metrics import parse_failure_rate
from criticlab.report.published import SUBSET_NAMES, SUBSETS
from criticlab.report.run import AnyRun, Run

Fmt = Callable[[Any], str]
Getter = Callable[[Mapping[str, Any]], Any]


def num(v: Any) -> float | None:
    return None if v is None or isinstance(v, bool) else float(v)


def pct(v: Any) -> str:
    """A percentage already on 0-100."""
    x = num(v)
    return "—" if x is None else f"{x:.1f}"


def rate(v: Any) -> str:
    """A fraction 0-1 shown as a percentage."""
    x = num(v)
    return "—" if x is None else f"{100 * x:.1f}%"


def dec3(v: Any) -> str:
    x = num(v)
    return "—" if x is None else f"{x:.3f}"


def count(v: Any) -> str:
    x = num(v)
    return "—" if x is None else f"{round(x):,}"


def seconds(v: Any) -> str:
    x = num(v)
    if x is None:
        return "—"
    if x < 60:
        return f"{x:.1f} s"
    m, s = divmod(round(x), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def subset_name(s: str) -> str:
    return SUBSET_NAMES.get(s, s)


def order_subsets(subsets: set[str]) -> list[str]:
    return [s for s in SUBSETS if s in subsets] + sorted(subsets - set(SUBSETS))


def pb(run: Run) -> Mapping[str, Any]:
    return (run.metrics or {}).get("processbench") or {}


def pb_subsets(run: Run) -> list[str]:
    return order_subsets({k for k in pb(run) if k != "average"})


def path(m: Mapping[str, Any] | None, *keys: str) -> Any:
    value: Any = m or {}
    for k in keys:
        value = value.get(k) if isinstance(value, Mapping) else None
    return value


def parse_rate(run: Run) -> float | None:
    """``metrics.json``'s parse-failure rate, or computed from the results without one."""
    if run.metrics and run.metrics.get("parse_failure_rate") is not None:
        return float(run.metrics["parse_failure_rate"])
    return parse_failure_rate(run.results) if run.results else None


SECTIONS: tuple[tuple[str, str, tuple[tuple[str, str, Fmt], ...]], ...] = (
    ("judgment", "Judgment", (
        ("n", "n", count), ("accuracy", "Accuracy", pct), ("precision", "Precision", pct),
        ("recall", "Recall", pct), ("f1", "F1", pct), ("auroc", "AUROC", dec3))),
    ("calibration", "Calibration", (
        ("ece", "ECE (10 bins)", dec3), ("brier", "Brier", dec3), ("auroc", "AUROC", dec3))),
    ("steps", "Step verdicts", (
        ("precision", "Precision", pct), ("recall", "Recall", pct), ("f1", "F1", pct))),
)


# --- one run ------------------------------------------------------------------------------

def processbench_rows(run: Run) -> list[tuple[str, str, list[str]]]:
    """(subset, name, cells) of the ProcessBench table: each subset, then the average."""
    values = pb(run)
    rows = [(s, subset_name(s), [fmt(values[s].get(k)) for k, fmt in (
        ("n", count), ("n_err", count), ("n_cor", count), ("acc_err", pct), ("acc_cor", pct),
        ("f1", pct))]) for s in pb_subsets(run)]
    avg = values.get("average")
    if isinstance(avg, Mapping):
        rows.append(("average", "Average", ["", "", "", *(
            pct(avg[k]) if k in avg else "" for k in ("acc_err", "acc_cor", "f1"))]))
    return rows


def _usage(run: Run) -> Mapping[str, Any]:
    found = (run.metrics or {}).get("usage")
    if found:
        return found
    total = {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0, "cached": 0}
    for r in run.results:
        if r.critique is not None:
            for k, v in r.critique.usage.to_dict().items():
                total[k] += v
    return total


def run_rows(run: Run) -> list[tuple[str, str, str]]:
    """(key, label, value) of the "Run" table."""
    m, u = run.metrics or {}, _usage(run)
    n = m.get("n", len(run.results))
    errors = m.get("errors", sum(1 for r in run.results if r.error or r.critique is None))
    return [("n", "Items", count(n)), ("errors", "Errors (critic raised)", count(errors)),
            ("prompt_tokens", "Prompt tokens", count(u.get("prompt_tokens"))),
            ("completion_tokens", "Completion tokens", count(u.get("completion_tokens"))),
            ("calls", "Model calls", count(u.get("calls"))),
            ("cached", "Cached calls", count(u.get("cached"))),
            ("elapsed_s", "Elapsed", seconds(m.get("elapsed_s")))]


# --- side by side ---------------------------------------------------------------------------

def columns(runs: Sequence[AnyRun], names: Sequence[str], colors: Sequence[str]
            ) -> list[tuple[str, str, str]]:
    """The head of a side-by-side table: (label, directory name, colour) per run."""
    return [(n, r.path.name, c) for r, n, c in zip(runs, names, colors, strict=True)]


@dataclass(frozen=True)
class Row:
    """A row of a side-by-side table (``compare`` in ``macros.html.j2``): its values, their
    format, and which is best (``True``: the highest, ``False``: the lowest, ``None``: none
    marked). A row that starts a new ``group`` gets a heading; one whose values are all
    unknown is left out."""

    label: str
    values: Sequence[Any]
    fmt: Fmt
    better: bool | None = None
    key: str = ""
    group: str = ""
    cls: str = ""

    @property
    def empty(self) -> bool:
        return all(v is None for v in self.values)

    def cells(self) -> list[tuple[str, bool]]:
        """(formatted value, best) per run: the best of several different values is marked."""
        numbers = [num(v) if isinstance(v, int | float) else None for v in self.values]
        known = {v for v in numbers if v is not None}
        best = None
        if self.better is not None and len(known) > 1:
            best = max(known) if self.better else min(known)
        return [(self.fmt(v), n is not None and n == best)
                for v, n in zip(self.values, numbers, strict=True)]


def text(v: Any) -> str:
    return str(v) if v not in (None, "") else "—"


def signed(v: Any) -> str:
    x = num(v)
    return "—" if x is None else f"{x:+.1f}"


def comparison_rows(runs: Sequence[Run]) -> list[Row]:
    """The side-by-side table of eval runs, grouped: ProcessBench, the metric sections,
    reliability and cost."""
    ms = [dict(r.metrics or {}, parse_failure_rate=parse_rate(r)) for r in runs]

    def row(group: str, label: str, get: Getter, fmt: Fmt, better: bool | None) -> Row:
        return Row(label, [num(get(m)) for m in ms], fmt, better, group=group,
                   cls="parse" if label == "Parse failures" else "")

    def at(*keys: str) -> Getter:
        return lambda m: path(m, *keys)

    rows = []
    subsets = order_subsets({s for r in runs for s in pb_subsets(r)})
    for key, group in (("f1", "ProcessBench F1"), ("acc_err", "ProcessBench acc_err"),
                       ("acc_cor", "ProcessBench acc_cor")):
        rows += [row(group, subset_name(s), at("processbench", s, key), pct, True)
                 for s in subsets]
        if key == "f1" and subsets:
            rows.append(row(group, "Average", at("processbench", "average", "f1"), pct, True))
    for key, title, fields in SECTIONS:
        if any((r.metrics or {}).get(key) for r in runs):
            rows += [row(title, label, at(key, k), fmt, k not in ("ece", "brier"))
                     for k, label, fmt in fields if k != "n"]
    rows += [row("Reliability", "Parse failures", at("parse_failure_rate"), rate, False),
             row("Reliability", "Errors (critic raised)", at("errors"), count, False)]
    for k, label in (("prompt_tokens", "Prompt tokens"), ("completion_tokens",
                     "Completion tokens"), ("calls", "Model calls"), ("cached", "Cached calls")):
        rows.append(row("Cost", label, at("usage", k), count, None))
    rows += [row("Cost", "Elapsed", at("elapsed_s"), seconds, None),
             row("Cost", "Items", at("n"), count, None)]
    return rows


# --- published numbers ------------------------------------------------------------------

def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", s.lower()).strip("-")


# Suffixes that name a packaging of the same weights (quantisation, file format), not a model.
_PACKAGING = re.compile(r"(awq|gptq|gguf|mlx|exl2|fp8|fp16|bf16|int4|int8|w\d+a\d+|\d+bit|q\d\w*)")


def match_published(model: str, published: Mapping[str, Any]) -> str | None:
    """The published model that a run's model names: the same name after the last ``/`` or
    ``:``, case and punctuation aside, or that name plus packaging suffixes
    (``Qwen/Qwen2.5-7B-Instruct-AWQ`` -> ``Qwen2.5-7B-Instruct``; ``gpt-4o-mini`` is not
    ``GPT-4o``)."""
    base = _norm(re.split(r"[/:]", model)[-1]) if model else ""
    for key in published:
        k = _norm(key)
        rest = base[len(k) + 1:].split("-") if base.startswith(k + "-") else None
        if base == k or (rest and all(_PACKAGING.fullmatch(t) for t in rest)):
            return key
    return None


@dataclass(frozen=True)
class Published:
    """The published-numbers table: subset columns, this report's runs (label, decoding,
    (F1, difference to the published F1 or None) per column), the published models (name,
    decoding, F1 per column), and notes."""

    columns: list[str]
    mine: list[tuple[str, str, list[tuple[str, float | None]]]]
    published: list[tuple[str, str, list[str]]]
    notes: list[str]


def published_table(runs: Sequence[Run], labels: Sequence[str],
                    published: Mapping[str, Mapping[str, Any]]) -> Published:
    subsets = order_subsets(set(SUBSETS) | {s for r in runs for s in pb_subsets(r)})
    cols = [*subsets, "average"]
    mine, notes = [], []
    for r, lab in zip(runs, labels, strict=True):
        values = pb(r)
        if not values:
            continue
        ref = match_published(r.model, published)
        cells: list[tuple[str, float | None]] = []
        for s in cols:
            v = num(path(values, s, "f1"))
            ref_v = num(published[ref].get(s)) if ref else None
            cells.append((pct(v), None if v is None or ref_v is None else v - ref_v))
        mine.append((lab, r.decoding or "—", cells))
        missing = [s for s in SUBSETS if s not in values]
        if missing and path(values, "average", "f1") is not None:
            notes.append(f"{lab}: average over its {len(pb_subsets(r))} subsets only "
                         f"(no {', '.join(subset_name(s) for s in missing)}), so not directly "
                         "comparable with a published average.")
    ranked = sorted(published.items(), key=lambda kv: -(num(kv[1].get("average")) or -1.0))
    return Published([subset_name(s) if s != "average" else "Average" for s in cols], mine,
                     [(name, str(row.get("decoding", "—")), [pct(row.get(s)) for s in cols])
                      for name, row in ranked], notes)
