"""``write_report``: one self-contained HTML file (inline CSS, JS and SVG; nothing fetched) from
one or more run directories of ``criticlab eval``, ``refine`` or ``select``.

For eval runs: metric tables, a side-by-side comparison, charts, the published ProcessBench
numbers and a browsable, filterable list of every item. It recomputes no metric: the tables
show ``metrics.json``; the heatmap, histogram and item list come from ``results.jsonl``.
Refine runs are shown by :mod:`criticlab.report.closed_loop`, select runs by
:mod:`criticlab.report.selection`. The page is drawn by ``templates/report.html.j2`` and the
templates it includes; this module gives them the numbers."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from criticlab.errors import ConfigError
from criticlab.metrics import gold_index
from criticlab.report import charts, tables
from criticlab.report.closed_loop import refine_part
from criticlab.report.items import items_payload, outcome, subset_of
from criticlab.report.loop_runs import RefineRun, SelectRun
from criticlab.report.published import SUBSET_NAMES
from criticlab.report.render import render
from criticlab.report.run import AnyRun, Run, load_run
from criticlab.report.selection import select_part
from criticlab.report.tables import num, order_subsets, path, pb, pb_subsets

log = logging.getLogger(__name__)


def write_report(run_dirs: Sequence[str | Path], out: str | Path, *,
                 published: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Read each run directory (see :func:`load_run`: eval, refine or select) and write one
    HTML report to ``out`` (a file path, or a directory to hold ``report.html``). ``published``
    maps a model name to ``{subset: F1, "average": F1, "decoding": str}`` (e.g.
    ``PUBLISHED_PROCESSBENCH``) and adds a table of those numbers next to the eval runs'.
    Returns the path written. Raises ``InputError`` for a bad run directory and
    ``ConfigError`` when no directory is given."""
    if not run_dirs:
        raise ConfigError("report: give at least one run directory")
    runs = [load_run(d) for d in run_dirs]
    path = Path(out)
    if path.is_dir():
        path = path / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    # errors="replace": a lone surrogate in a result (undecodable model bytes) cannot be UTF-8
    path.write_text(render_report(runs, published=published), encoding="utf-8",
                    errors="replace")
    log.info("wrote %s (%d runs)", path, len(runs))
    return path


def labels(runs: Sequence[AnyRun]) -> list[str]:
    """Each run's label, with its directory name added where two runs share one."""
    names = [r.label for r in runs]
    return [f"{name} ({r.path.name})" if names.count(name) > 1 else name
            for name, r in zip(names, runs, strict=True)]


def colors(n: int) -> list[str]:
    return [charts.PALETTE[i % len(charts.PALETTE)] for i in range(n)]


def render_report(runs: Sequence[AnyRun], *,
                  published: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The report as one HTML string (what :func:`write_report` writes): eval runs first, then
    refine runs, then select runs, each kind compared among itself."""
    evals = [r for r in runs if isinstance(r, Run)]
    refines = [r for r in runs if isinstance(r, RefineRun)]
    selects = [r for r in runs if isinstance(r, SelectRun)]
    names = [labels(evals), labels(refines), labels(selects)]
    parts = {
        "ev": eval_part(evals, names[0], published) if evals else None,
        "refine": refine_part(refines, names[1], colors(len(refines))) if refines else None,
        "select": select_part(selects, names[2], colors(len(selects))) if selects else None}
    benchmarks = sorted({r.benchmark for r in evals if r.benchmark})
    kinds = [k for k, rs in (("refine", refines), ("select", selects)) if rs]
    return render("report.html.j2", **parts,
                  title=" · ".join(["criticlab report", *benchmarks, *kinds]),
                  n=len(runs), labels=[n for ns in names for n in ns],
                  when=datetime.now().strftime("%Y-%m-%d %H:%M"),
                  nav=[link for p in parts.values() if p for link in p.nav])


# --- the eval part -------------------------------------------------------------------------

@dataclass(frozen=True)
class EvalRun:
    """One eval run as ``templates/eval.html.j2`` draws it."""

    run: Run
    label: str
    color: str
    warn: str
    processbench: list[tuple[str, str, list[str]]]
    sections: list[tuple[str, str, Any, Mapping[str, Any]]]  # key, title, rows, values
    run_rows: list[tuple[str, str, str]]
    parse: str
    heatmap: Markup
    histogram: Markup
    calibration: Markup | None


@dataclass(frozen=True)
class EvalPart:
    nav: list[tuple[str, str]]
    runs: list[EvalRun]
    columns: list[tuple[str, str, str]]
    comparison: list[tables.Row]
    f1: Markup | None
    published: tables.Published | None
    subsets: list[tuple[str, str]]  # (key, name) of the subsets in the item list
    items: dict[str, Any]  # the item browser's data (``criticlab-items``)
    subset_names = SUBSET_NAMES  # its names of subsets (``criticlab-subsets``)


def eval_part(runs: Sequence[Run], names: Sequence[str],
              published: Mapping[str, Mapping[str, Any]] | None) -> EvalPart:
    cols = colors(len(runs))
    f1 = _f1_chart(runs, names, cols)
    nav = [("comparison", "Comparison")] if len(runs) > 1 else []
    nav += [("f1", "F1 per subset")] if f1 else []
    nav += [("published", "Published")] if published else []
    nav += [(f"run-{i + 1}", n) for i, n in enumerate(names)] if len(runs) > 1 else [
        ("run-1", "Metrics")]
    return EvalPart(
        nav=[*nav, ("items-section", "Items")],
        runs=[_run(run, name, color) for run, name, color in zip(runs, names, cols, strict=True)],
        columns=tables.columns(runs, names, cols),
        comparison=tables.comparison_rows(runs) if len(runs) > 1 else [], f1=f1,
        published=tables.published_table(runs, names, published) if published else None,
        subsets=[(s, tables.subset_name(s)) for s in order_subsets(
            {subset_of(res) for r in runs for res in r.results} - {""})],
        items=items_payload(list(zip(names, (r.results for r in runs), strict=True))))


def _run(run: Run, label: str, color: str) -> EvalRun:
    m = run.metrics or {}
    warn = ""
    if run.metrics is None:
        warn = ("No metrics.json in this run directory (the run may have stopped early): "
                "metric tables are missing; the item list and charts below come from "
                "results.jsonl.")
    elif m.get("complete") is False:
        warn = ("This run is incomplete (interrupted, or some items failed): its metrics "
                "cover the items it finished.")
    outcomes = [outcome(r) for r in run.results]
    return EvalRun(run, label, color, warn, tables.processbench_rows(run),
                   [(key, title, rows, m[key]) for key, title, rows in tables.SECTIONS
                    if m.get(key)], tables.run_rows(run),
                   tables.rate(tables.parse_rate(run)), charts.heatmap(outcomes),
                   charts.position_histogram(outcomes), _calibration(run))


def _calibration(run: Run) -> Markup | None:
    """A reliability diagram when the critic gives a confidence that the solution is right
    (``Critique.score``, e.g. the selfeval critic's P(True))."""
    conf, right = [], []
    for r in run.results:
        g = gold_index(r)
        c = r.critique
        if g is None or c is None or not c.parsed or c.score is None:
            continue
        conf.append(min(max(c.score, 0.0), 1.0))
        right.append(g == -1)
    return charts.reliability_diagram(conf, right) if conf else None


def _f1_chart(runs: Sequence[Run], labels: Sequence[str], colors: Sequence[str]
              ) -> Markup | None:
    subsets = order_subsets({s for r in runs for s in pb_subsets(r)})
    if not subsets:
        return None
    groups = [*subsets, "average"]
    series = [charts.Series(lab, c, [num(path(pb(r), s, "f1")) for s in groups])
              for r, lab, c in zip(runs, labels, colors, strict=True)]
    names = [tables.subset_name(s) if s != "average" else "Average" for s in groups]
    return (charts.bar_chart(names, series, y_max=100, y_label="F1 (%)", width=600, height=300,
                             title="ProcessBench F1 per subset") + charts.legend(series))

