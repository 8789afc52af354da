"""``write_report``: one self-contained HTML file (inline CSS, JS and SVG; nothing fetched) from
one or more run directories of ``criticlab eval``, ``refine`` or ``select``.

For eval runs: metric tables, a side-by-side comparison, charts, the published ProcessBench
numbers and a browsable, filterable list of every item. It recomputes no metric: the tables
show ``metrics.json``; the heatmap, histogram and item list come from ``results.jsonl``.
Refine runs are drawn by :mod:`criticlab.report.closed_loop`, select runs by
:mod:`criticlab.report.selection`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from criticlab.errors import ConfigError
from criticlab.metrics import gold_index
from criticlab.report import assets, blocks, charts, loop_assets, tables
from criticlab.report.closed_loop import refine_part
from criticlab.report.items import items_payload, outcome, subset_of
from criticlab.report.loop_runs import RefineRun, SelectRun
from criticlab.report.published import SUBSET_NAMES
from criticlab.report.run import AnyRun, Run, load_run
from criticlab.report.selection import select_part
from criticlab.report.tables import num, order_subsets, path, pb, pb_subsets, subset_name

log = logging.getLogger(__name__)

Fmt = Callable[[Any], str]
Getter = Callable[[Mapping[str, Any]], Any]


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


def _colors(n: int) -> list[str]:
    return [charts.PALETTE[i % len(charts.PALETTE)] for i in range(n)]


def render_report(runs: Sequence[AnyRun], *,
                  published: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The report as one HTML string (what :func:`write_report` writes): eval runs first, then
    refine runs, then select runs, each kind compared among itself."""
    evals = [r for r in runs if isinstance(r, Run)]
    refines = [r for r in runs if isinstance(r, RefineRun)]
    selects = [r for r in runs if isinstance(r, SelectRun)]
    nav: list[tuple[str, str]] = []
    body: list[str] = []
    scripts: list[str] = []
    if evals:
        labels = blocks.labels(evals)
        nav, body = _eval_part(evals, labels, published)
        scripts += [
            '<script type="application/json" id="criticlab-items">'
            f"{items_payload(list(zip(labels, (r.results for r in evals), strict=True)))}"
            "</script>",
            blocks.data_script("criticlab-subsets", SUBSET_NAMES),
            f"<script>{assets.JS}</script>"]
    if refines:
        more_nav, html = refine_part(refines, blocks.labels(refines), _colors(len(refines)))
        nav, body = [*nav, *more_nav], [*body, html]
    if selects:
        more_nav, html = select_part(selects, blocks.labels(selects), _colors(len(selects)))
        nav, body = [*nav, *more_nav], [*body, html]
    if refines or selects:
        scripts.append(f"<script>{loop_assets.JS}</script>")
    benchmarks = sorted({r.benchmark for r in evals if r.benchmark})
    kinds = [k for k, rs in (("refine", refines), ("select", selects)) if rs]
    title = "criticlab report" + "".join(f" · {x}" for x in (*benchmarks, *kinds))
    when = datetime.now().strftime("%Y-%m-%d %H:%M")
    all_labels = [*(blocks.labels(evals)), *blocks.labels(refines), *blocks.labels(selects)]
    sub = (f"{len(runs)} run{'s' if len(runs) != 1 else ''} · "
           + " · ".join(escape(label) for label in all_labels) + f" · generated {when}")
    links = "".join(f'<a href="#{k}">{escape(v)}</a>' for k, v in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing may be fetched: the report must open offline, and its data is untrusted.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(title)}</title><style>{assets.CSS}{loop_assets.CSS}</style></head>"
        f'<body><header class="top"><h1>criticlab <span>report</span></h1>'
        f'<div class="sub">{sub}</div><nav>{links}</nav></header>'
        f"<main>{''.join(body)}</main>{''.join(scripts)}</body></html>\n"
    )


def _eval_part(runs: Sequence[Run], labels: Sequence[str],
               published: Mapping[str, Mapping[str, Any]] | None
               ) -> tuple[list[tuple[str, str]], list[str]]:
    """(navigation links, HTML blocks) for the eval runs of a report."""
    colors = _colors(len(runs))
    subsets = _subsets(runs)
    nav: list[tuple[str, str]] = []
    body: list[str] = []
    summary = []
    if len(runs) > 1:
        nav.append(("comparison", "Comparison"))
        summary.append('<div class="card" id="comparison"><h3>Side by side</h3>'
                       f"{tables.comparison_table(runs, labels, colors)}</div>")
    f1_chart = _f1_chart(runs, labels, colors)
    if f1_chart:
        nav.append(("f1", "F1 per subset"))
        summary.append(f'<div class="card" id="f1"><h3>ProcessBench F1 per subset</h3>{f1_chart}'
                       "</div>")
    if summary:
        body.append(_section("summary", "Summary", f'<div class="grid2">{"".join(summary)}</div>'))
    if published:
        nav.append(("published", "Published"))
        body.append(_section("published", "Next to published ProcessBench results",
                             '<div class="card">'
                             f"{tables.published_table(runs, labels, published)}</div>"))
    nav += [(f"run-{i + 1}", lab) for i, lab in enumerate(labels)] if len(runs) > 1 else [
        ("run-1", "Metrics")]
    body.append('<section id="runs">' + "".join(
        _run_section(i, run, labels[i], colors[i]) for i, run in enumerate(runs)) + "</section>")
    nav.append(("items-section", "Items"))
    body.append(_items_section(runs, labels, subsets))
    return nav, body


# --- helpers ------------------------------------------------------------------------------

def _section(ident: str, title: str, inner: str) -> str:
    return f'<section id="{ident}"><h2>{escape(title)}</h2>{inner}</section>'


def _subsets(runs: Sequence[Run]) -> list[str]:
    found = {subset_of(res) for r in runs for res in r.results} - {""}
    return order_subsets(found)


# --- one run ----------------------------------------------------------------------------

def _run_section(i: int, run: Run, label: str, color: str) -> str:
    m = run.metrics or {}
    outcomes = [outcome(r) for r in run.results]
    meta = [f"<code>{escape(str(run.path))}</code>"]
    for key, value in (("benchmark", run.benchmark), ("decoding", run.decoding)):
        if value:
            meta.append(f"{key} <b>{escape(value)}</b>")
    meta.append(f"{len(run.results):,} items")
    cards = []
    if pb(run):
        cards.append(("ProcessBench", tables.processbench_table(run), " wide"))
    for key, title, rows in tables.SECTIONS:
        if m.get(key):
            cards.append((title, tables.section_table(run, key, m[key], rows), ""))
    cards.append(("Run", tables.run_table(run), ""))
    grid = "".join(f'<div class="card{wide}"><h3>{escape(t)}</h3>{html}</div>'
                   for t, html, wide in cards)
    warn = ""
    if run.metrics is None:
        warn = ('<div class="warnbox">No metrics.json in this run directory (the run may have '
                "stopped early): metric tables are missing; the item list and charts below "
                "come from results.jsonl.</div>")
    elif m.get("complete") is False:
        warn = ('<div class="warnbox">This run is incomplete (interrupted, or some items '
                "failed): its metrics cover the items it finished.</div>")
    config = ""
    if run.config:
        config = ('<details class="config"><summary>config.json</summary><pre>'
                  f"{escape(json.dumps(run.config, indent=2, ensure_ascii=False))}</pre></details>")
    return (
        f'<div class="run" id="run-{i + 1}"><div class="runhead"><h2>'
        f'<span class="swatch" style="background:{color}"></span>{escape(label)}</h2>'
        f'<span class="meta">{" · ".join(meta)}</span></div>{warn}'
        f'<div class="grid">{grid}</div>'
        f'<div class="grid2" style="margin-top:16px">'
        f'<div class="card"><h3>First error: critic vs gold</h3>{charts.heatmap(outcomes)}</div>'
        f'<div class="card"><h3>Where the first error is</h3>'
        f"{charts.position_histogram(outcomes)}</div></div>{_calibration(run)}{config}</div>"
    )


def _calibration(run: Run) -> str:
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
    if not conf:
        return ""
    return ('<div class="grid2" style="margin-top:16px"><div class="card"><h3>Calibration: '
            "confidence that the solution is right vs how often it is</h3>"
            f"{charts.reliability_diagram(conf, right)}</div></div>")


def _f1_chart(runs: Sequence[Run], labels: Sequence[str], colors: Sequence[str]) -> str:
    subsets = order_subsets({s for r in runs for s in pb_subsets(r)})
    if not subsets:
        return ""
    groups = [*subsets, "average"]
    series = [charts.Series(lab, c, [num(path(pb(r), s, "f1")) for s in groups])
              for r, lab, c in zip(runs, labels, colors, strict=True)]
    names = [subset_name(s) if s != "average" else "Average" for s in groups]
    return (charts.bar_chart(names, series, y_max=100, y_label="F1 (%)", width=600, height=300,
                             title="ProcessBench F1 per subset") + charts.legend(series))


# --- items ------------------------------------------------------------------------------

def _items_section(runs: Sequence[Run], labels: Sequence[str], subsets: Sequence[str]) -> str:
    run_select = ""
    if len(runs) > 1:
        options = "".join(f'<option value="{i}">{escape(lab)}</option>'
                          for i, lab in enumerate(labels))
        run_select = (f'<label class="meta">run <select id="run-select">{options}</select>'
                      "</label>")
    subset_opts = '<option value="">all subsets</option>' + "".join(
        f'<option value="{escape(s)}">{escape(subset_name(s))}</option>' for s in subsets)
    filters = "".join(
        f'<button type="button" data-filter="{k}" title="{escape(tip)}">{label}'
        '<span class="n"></span></button>'
        for k, label, tip in (
            ("all", "All", "every item"),
            ("miss", "Misses", "the critic's first error differs from gold (unparsed counts)"),
            ("unparsed", "Unparsed", "the critic's output could not be parsed, or it raised")))
    per_page = "".join(f'<option value="{n}"{" selected" if n == 25 else ""}>{n} / page</option>'
                       for n in (10, 25, 50, 100))
    return (
        '<section id="items-section"><h2>Items</h2>'
        f'<div class="toolbar">{run_select}<div class="seg" id="filters">{filters}</div>'
        f'<select id="subset-select" aria-label="subset">{subset_opts}</select>'
        '<input type="search" id="item-search" placeholder="search id or problem text" '
        'aria-label="search">'
        f'<div class="pager"><span class="count" id="item-count"></span>'
        f'<select id="per-page" aria-label="items per page">{per_page}</select>'
        '<button type="button" id="prev">‹ prev</button><span class="count" id="page-info">'
        '</span><button type="button" id="next">next ›</button></div></div>'
        '<div class="keys"><span><i class="k-gold"></i>gold first error</span>'
        "<span><i class=\"k-pred\"></i>critic's first error</span>"
        '<span><i class="k-both"></i>both (the critic is right)</span>'
        '<span class="meta">Steps are numbered from 0, as in ProcessBench.</span></div>'
        '<div id="items"><noscript>The item list needs JavaScript.</noscript></div>'
        '<div class="pager bottom"><button type="button" id="prev2">‹ prev</button>'
        '<button type="button" id="next2">next ›</button></div></section>'
    )
