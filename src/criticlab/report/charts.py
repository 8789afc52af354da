"""Inline charts for the report: grouped bar charts as SVG and the first-error confusion
heatmap as an HTML table. Pure string building; every label is escaped."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from criticlab.report.items import Outcome

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
              y_label: str = "", title: str = "", width: int = 640, height: int = 260) -> str:
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
    # value labels above the bars, on all bars or none: only when the longest one fits
    labels = max((len(_fmt(v)) for v in values), default=0) * 5.6 <= bar_w - 1
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" style="max-width:{width}px" '
           f'role="img" aria-label="{escape(title or y_label)}">']
    if title:
        out.append(f"<title>{escape(title)}</title>")
    tick = 0.0
    while tick <= top + 1e-9:
        y = top_pad + plot_h * (1 - tick / top)
        out.append(f'<line class="grid" x1="{left}" x2="{width - right:.0f}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/><text class="tick" x="{left - 6}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{_fmt(tick)}</text>')
        tick += step
    if y_label:
        out.append(f'<text class="axis-label" transform="translate(13 {top_pad + plot_h / 2:.0f})'
                   f' rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    base = top_pad + plot_h
    for gi, group in enumerate(groups):
        gx = left + gi * group_w
        x0 = gx + (group_w - bar_w * n_series) / 2
        for si, s in enumerate(series):
            v = s.values[gi] if gi < len(s.values) else None
            x = x0 + si * bar_w
            tip = f"{s.name} · {group}: {'n/a' if v is None else _fmt(v)}"
            if v is None:
                out.append(f'<text class="na" x="{x + bar_w / 2:.1f}" y="{base - 4:.1f}" '
                           f'text-anchor="middle"><title>{escape(tip)}</title>–</text>')
                continue
            h = plot_h * min(max(v, 0.0), top) / top
            out.append(f'<rect x="{x + 1:.1f}" y="{base - h:.1f}" width="{bar_w - 2:.1f}" '
                       f'height="{h:.1f}" rx="2" fill="{escape(s.color)}">'
                       f"<title>{escape(tip)}</title></rect>")
            label = _fmt(v)
            if labels:
                out.append(f'<text class="val" x="{x + bar_w / 2:.1f}" y="{base - h - 4:.1f}" '
                           f'text-anchor="middle">{label}</text>')
        out.append(f'<text class="group" x="{gx + group_w / 2:.1f}" y="{base + 18:.1f}" '
                   f'text-anchor="middle">{escape(group)}</text>')
    out.append(f'<line class="axis" x1="{left}" x2="{width - right:.0f}" y1="{base:.1f}" '
               f'y2="{base:.1f}"/></svg>')
    return "".join(out)


def legend(series: Sequence[Series]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{escape(s.color)}"></i>{escape(s.name)}</span>'
        for s in series) + "</div>"


def _bin(index: int) -> str:
    return f"{INDEX_CAP}+" if index >= INDEX_CAP else str(index)


def _bins(indices: Sequence[int]) -> list[str]:
    top = min(max(indices, default=0), INDEX_CAP)
    return [_bin(i) for i in range(-1, top + 1)]


def position_histogram(outcomes: Sequence[Outcome]) -> str:
    """Gold and predicted first-error index, side by side ("-1" = no wrong step)."""
    gold = Counter(_bin(o.gold) for o in outcomes if o.gold is not None)
    pred = Counter(_bin(o.pred) for o in outcomes if o.pred is not None)
    seen = [o.gold for o in outcomes if o.gold is not None]
    seen += [o.pred for o in outcomes if o.pred is not None]
    bins = _bins(seen)
    series = [Series("gold", GOLD_COLOR, [float(gold[b]) for b in bins]),
              Series("critic", PRED_COLOR, [float(pred[b]) for b in bins])]
    unparsed = sum(1 for o in outcomes if o.pred is None and o.gold is not None)
    note = f"; {unparsed} items without a predicted index are left out" if unparsed else ""
    return (bar_chart(bins, series, y_label="items", title="First-error index: gold vs critic",
                      width=600, height=280)
            + legend(series)
            + f'<p class="note">Index of the first wrong step (0-based; −1 = none){note}.</p>')


def heatmap(outcomes: Sequence[Outcome]) -> str:
    """Predicted vs gold first-error index as a table of coloured cells (row-normalised)."""
    labelled = [o for o in outcomes if o.gold is not None]
    if not labelled:
        return '<p class="note">No step-level gold labels in this run.</p>'
    rows = _bins([o.gold for o in labelled if o.gold is not None])
    cols = _bins([o.pred for o in labelled if o.pred is not None] + [int(r.rstrip("+"))
                                                                     for r in rows])
    cols.append("unparsed")
    counts = Counter((_bin(o.gold), "unparsed" if o.pred is None else _bin(o.pred))
                     for o in labelled if o.gold is not None)
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    out = ['<div class="heatwrap"><table class="heatmap"><thead><tr><th></th>'
           f'<th class="axis" colspan="{len(cols)}">critic\'s first error →</th><th></th></tr>'
           f'<tr><th class="axis">gold ↓</th>{head}<th class="rowtotal">n</th></tr>'
           "</thead><tbody>"]
    for r in rows:
        total = sum(counts[(r, c)] for c in cols)
        out.append(f"<tr><th>{escape(r)}</th>")
        for c in cols:
            n = counts[(r, c)]
            share = n / total if total else 0.0
            tip = f"gold {r}, critic {c}: {n} ({share:.0%} of row)"
            out.append(f'<td style="{_cell_style(share, r == c, c == "unparsed", n)}" '
                       f'title="{escape(tip)}">{n or ""}</td>')
        out.append(f'<td class="rowtotal">{total}</td></tr>')
    out.append("</tbody></table></div>")
    out.append('<p class="note">Rows: gold first wrong step; columns: the critic\'s. '
               "Green: exact match (diagonal); red: a miss. Shade: share of the row. "
               f"Indices ≥ {INDEX_CAP} share the last bin.</p>")
    return "".join(out)


def _cell_style(share: float, diagonal: bool, unparsed: bool, n: int) -> str:
    if n == 0:
        return "background:transparent"
    rgb = "5,150,105" if diagonal else ("107,114,128" if unparsed else "220,38,38")
    alpha = 0.12 + 0.78 * share
    color = "#fff" if alpha > 0.55 else "#111827"
    return f"background:rgba({rgb},{alpha:.2f});color:{color}"


def reliability_diagram(confidences: Sequence[float], correct: Sequence[bool],
                        bins: int = 10) -> str:
    """An SVG reliability diagram: per equal-width confidence bin, the share of solutions
    that are right (bars) against the diagonal of perfect calibration; bin counts below."""
    w, h, pad = 360, 240, 36
    inner_w, inner_h = w - 2 * pad, h - 2 * pad
    counts = [0] * bins
    right = [0] * bins
    for c, y in zip(confidences, correct, strict=True):
        b = min(int(c * bins), bins - 1)
        counts[b] += 1
        right[b] += int(y)
    parts = [f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
             'aria-label="reliability diagram">',
             f'<line x1="{pad}" y1="{pad + inner_h}" x2="{pad + inner_w}" y2="{pad}" '
             'stroke="#999" stroke-dasharray="4 3"/>',
             f'<line x1="{pad}" y1="{pad + inner_h}" x2="{pad + inner_w}" y2="{pad + inner_h}" '
             'stroke="#444"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{pad + inner_h}" stroke="#444"/>']
    bw = inner_w / bins
    for b in range(bins):
        if not counts[b]:
            continue
        acc = right[b] / counts[b]
        bh = acc * inner_h
        x = pad + b * bw
        parts.append(f'<rect class="rel-bar" x="{x + 1:.1f}" y="{pad + inner_h - bh:.1f}" '
                     f'width="{bw - 2:.1f}" height="{bh:.1f}" fill="#2563eb" opacity="0.8">'
                     f"<title>confidence {b / bins:.1f}–{(b + 1) / bins:.1f}: "
                     f"{right[b]} of {counts[b]} right</title></rect>")
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{pad + inner_h + 12}" font-size="9" '
                     f'text-anchor="middle" fill="#666">{counts[b]}</text>')
    for t in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{pad + t * inner_w:.1f}" y="{h - 6}" font-size="10" '
                     f'text-anchor="middle">{t:.1f}</text>')
        parts.append(f'<text x="{pad - 6}" y="{pad + inner_h - t * inner_h + 3:.1f}" '
                     f'font-size="10" text-anchor="end">{t:.1f}</text>')
    parts.append(f'<text x="{pad + inner_w / 2}" y="{pad - 10}" font-size="10" '
                 'text-anchor="middle" fill="#444">share right per confidence bin '
                 '(dashed: perfect calibration; counts under the bars)</text></svg>')
    return "".join(parts)
