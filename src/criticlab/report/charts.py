"""Inline charts for the report: grouped bar charts and a reliability diagram as SVG, the
first-error confusion heatmap as an HTML table. This module computes where things go; the
macros of ``templates/charts.html.j2`` draw them (and escape every label)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from criticlab.report.items import Outcome
from criticlab.report.render import macro

PALETTE = ("#2563eb", "#e67e22", "#059669", "#db2777", "#7c3aed", "#0891b2", "#b45309",
           "#4b5563")
GOLD_COLOR = "#d97706"
PRED_COLOR = "#2563eb"
INDEX_CAP = 10  # first-error indices >= this share one bin, "10+"


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[float | None]


def nice_max(value: float) -> tuple[float, float]:
    """An axis maximum >= value and its tick step (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return step * math.ceil(value / step - 1e-9), step


def _fmt(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def bar_chart(groups: Sequence[str], series: Sequence[Series], *, y_max: float | None = None,
              y_label: str = "", title: str = "", width: int = 640, height: int = 260
              ) -> Markup:
    """A grouped bar chart: one group per entry of ``groups``, one bar per series. ``None``
    values draw no bar. Returns an ``<svg>`` element ``width`` wide at most, which shrinks
    with its container."""
    values = [v for s in series for v in s.values if v is not None]
    top, step = nice_max(y_max if y_max is not None else max(values, default=1.0))
    n_groups, n_series = max(len(groups), 1), max(len(series), 1)
    left, right, top_pad, bottom = 48, 12, 18, 34
    group_w = (width - left - right) / n_groups
    plot_h = height - top_pad - bottom
    bar_w = min(44.0, group_w * 0.78 / n_series)
    base = top_pad + plot_h
    # value labels above the bars, on all bars or none: only when the longest one fits
    labels = max((len(_fmt(v)) for v in values), default=0) * 5.6 <= bar_w - 1
    ticks = []
    tick = 0.0
    while tick <= top + 1e-9:
        ticks.append((top_pad + plot_h * (1 - tick / top), _fmt(tick)))
        tick += step
    drawn = []  # per group: its centre, name and bars (left edge, height or None, ...)
    for gi, group in enumerate(groups):
        gx = left + gi * group_w
        x0 = gx + (group_w - bar_w * n_series) / 2
        bars = []
        for si, s in enumerate(series):
            v = s.values[gi] if gi < len(s.values) else None
            h = None if v is None else plot_h * min(max(v, 0.0), top) / top
            bars.append((x0 + si * bar_w, h, s.color,
                         f"{s.name} · {group}: {'n/a' if v is None else _fmt(v)}",
                         _fmt(v) if labels and v is not None else ""))
        drawn.append((gx + group_w / 2, group, bars))
    return macro("charts.html.j2", "bar_chart")(
        width=width, height=height, left=left, right=width - right, mid=round(base - plot_h / 2),
        base=base, bar_w=bar_w, title=title, y_label=y_label, ticks=ticks, groups=drawn)


def legend(series: Sequence[Series]) -> Markup:
    return macro("charts.html.j2", "legend")(series)


def _bin(index: int) -> str:
    return f"{INDEX_CAP}+" if index >= INDEX_CAP else str(index)


def _bins(indices: Sequence[int]) -> list[str]:
    top = min(max(indices, default=0), INDEX_CAP)
    return [_bin(i) for i in range(-1, top + 1)]


def position_histogram(outcomes: Sequence[Outcome]) -> Markup:
    """Gold and predicted first-error index, side by side ("-1" = no wrong step)."""
    gold = Counter(_bin(o.gold) for o in outcomes if o.gold is not None)
    pred = Counter(_bin(o.pred) for o in outcomes if o.pred is not None)
    seen = [o.gold for o in outcomes if o.gold is not None]
    seen += [o.pred for o in outcomes if o.pred is not None]
    bins = _bins(seen)
    series = [Series("gold", GOLD_COLOR, [float(gold[b]) for b in bins]),
              Series("critic", PRED_COLOR, [float(pred[b]) for b in bins])]
    chart = bar_chart(bins, series, y_label="items", title="First-error index: gold vs critic",
                      width=600, height=280)
    unparsed = sum(1 for o in outcomes if o.pred is None and o.gold is not None)
    return macro("charts.html.j2", "histogram")(chart, series, unparsed)


def heatmap(outcomes: Sequence[Outcome]) -> Markup:
    """Predicted vs gold first-error index as a table of coloured cells (row-normalised)."""
    labelled = [o for o in outcomes if o.gold is not None]
    rows = _bins([o.gold for o in labelled if o.gold is not None]) if labelled else []
    cols = _bins([o.pred for o in labelled if o.pred is not None] + [int(r.rstrip("+"))
                                                                     for r in rows])
    cols.append("unparsed")
    counts = Counter((_bin(o.gold), "unparsed" if o.pred is None else _bin(o.pred))
                     for o in labelled if o.gold is not None)
    table = []
    for r in rows:
        total = sum(counts[(r, c)] for c in cols)
        cells = []
        for c in cols:
            n = counts[(r, c)]
            share = n / total if total else 0.0
            cells.append((n, f"gold {r}, critic {c}: {n} ({share:.0%} of row)",
                          _cell_style(share, r == c, c == "unparsed", n)))
        table.append((r, cells, total))
    return macro("charts.html.j2", "heatmap")(cols, table, INDEX_CAP)


def _cell_style(share: float, diagonal: bool, unparsed: bool, n: int) -> str:
    if n == 0:
        return "background:transparent"
    rgb = "5,150,105" if diagonal else ("107,114,128" if unparsed else "220,38,38")
    alpha = 0.12 + 0.78 * share
    color = "#fff" if alpha > 0.55 else "#111827"
    return f"background:rgba({rgb},{alpha:.2f});color:{color}"


def reliability_diagram(confidences: Sequence[float], correct: Sequence[bool],
                        bins: int = 10) -> Markup:
    """An SVG reliability diagram: per equal-width confidence bin, the share of solutions
    that are right (bars) against the diagonal of perfect calibration; bin counts below."""
    counts = [0] * bins
    right = [0] * bins
    for c, y in zip(confidences, correct, strict=True):
        b = min(int(c * bins), bins - 1)
        counts[b] += 1
        right[b] += int(y)
    return macro("charts.html.j2", "reliability")(bins, counts, right)
