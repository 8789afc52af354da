"""HTML building blocks shared by the refine and select parts of the report: a run's heading,
a side-by-side table with the best value marked, a run's config, the JSON a browser reads,
and the toolbar and list of an item browser. Every text from a run is escaped."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Protocol

from criticlab.report.tables import num

Fmt = Callable[[Any], str]


class Labelled(Protocol):
    @property
    def path(self) -> Path: ...

    @property
    def label(self) -> str: ...


def labels(runs: Sequence[Labelled]) -> list[str]:
    """Each run's label, with its directory name added where two runs share one."""
    names = [r.label for r in runs]
    return [f"{name} ({r.path.name})" if names.count(name) > 1 else name
            for name, r in zip(names, runs, strict=True)]


def for_script(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` are written as
    ``\\u`` escapes, so no text can close the element."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def data_script(ident: str, value: Any) -> str:
    return f'<script type="application/json" id="{ident}">{for_script(value)}</script>'


def run_head(ident: str, label: str, color: str, meta: Sequence[str], warn: str = "") -> str:
    """A run's heading; ``meta`` items are HTML (escape what comes from the run)."""
    box = f'<div class="warnbox">{warn}</div>' if warn else ""
    return (f'<div class="runhead" id="{ident}"><h2><span class="swatch" '
            f'style="background:{color}"></span>{escape(label)}</h2>'
            f'<span class="meta">{" · ".join(meta)}</span></div>{box}')


def config_details(config: Mapping[str, Any], name: str = "config.json") -> str:
    if not config:
        return ""
    return (f'<details class="config"><summary>{escape(name)}</summary><pre>'
            f"{escape(json.dumps(config, indent=2, ensure_ascii=False))}</pre></details>")


@dataclass(frozen=True)
class Row:
    """A row of a side-by-side table: its values, their format, and which is best (``True``:
    the highest, ``False``: the lowest, ``None``: none marked)."""

    label: str
    values: Sequence[Any]
    fmt: Fmt
    better: bool | None = None
    key: str = ""


def side_by_side(name: str, heads: Sequence[str], rows: Sequence[Row], *,
                 first: str = "Metric") -> str:
    """A table with one column per run (``heads`` are HTML); with several runs, the best
    value of a row is bold. Rows whose values are all unknown are left out."""
    out = [f'<table class="metrics compare" data-table="{escape(name)}"><thead><tr>'
           f'<th>{escape(first)}</th>{"".join(heads)}</tr></thead><tbody>']
    for r in rows:
        if all(v is None for v in r.values):
            continue
        numbers = [num(v) if isinstance(v, int | float) else None for v in r.values]
        known = [v for v in numbers if v is not None]
        best = None
        if r.better is not None and len(known) > 1 and len(set(known)) > 1:
            best = max(known) if r.better else min(known)
        cells = "".join(
            f'<td{" class=best" if n is not None and n == best else ""}>{r.fmt(v)}</td>'
            for v, n in zip(r.values, numbers, strict=True))
        key = f' data-key="{escape(r.key)}"' if r.key else ""
        out.append(f"<tr{key}><td>{escape(r.label)}</td>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def run_columns(runs: Sequence[Labelled], names: Sequence[str], colors: Sequence[str]) -> list[str]:
    return [f'<th class="runcol"><span class="swatch" style="background:{c}"></span>'
            f"{escape(lab)}<small>{escape(r.path.name)}</small></th>"
            for r, lab, c in zip(runs, names, colors, strict=True)]


def text(v: Any) -> str:
    return escape(str(v)) if v not in (None, "") else "—"


def browser(ident: str, kind: str, title: str, run_names: Sequence[str],
            filters: Sequence[tuple[str, str, str]], keys: str = "") -> str:
    """An item browser's section: run choice, filter buttons (key, label, tooltip), search,
    pager and the list, which the report's script fills from ``<script id=IDENT-data>``."""
    run_select = ""
    if len(run_names) > 1:
        options = "".join(f'<option value="{i}">{escape(lab)}</option>'
                          for i, lab in enumerate(run_names))
        run_select = (f'<label class="meta">run <select class="run-select" '
                      f'id="{ident}-run">{options}</select></label>')
    buttons = "".join(
        f'<button type="button" data-filter="{k}" title="{escape(tip)}">{escape(label)}'
        '<span class="n"></span></button>' for k, label, tip in filters)
    per_page = "".join(f'<option value="{n}"{" selected" if n == 25 else ""}>{n} / page</option>'
                       for n in (10, 25, 50, 100))
    return (
        f'<section id="{ident}" class="browser" data-kind="{kind}"><h2>{escape(title)}</h2>'
        f'<div class="toolbar">{run_select}'
        f'<div class="seg filters" id="{ident}-filters">{buttons}</div>'
        f'<input type="search" class="search" id="{ident}-search" '
        'placeholder="search id or problem text" aria-label="search">'
        f'<div class="pager"><span class="count" id="{ident}-count"></span>'
        f'<select class="per" aria-label="items per page">{per_page}</select>'
        '<button type="button" class="prev">‹ prev</button><span class="count page-info">'
        '</span><button type="button" class="next">next ›</button></div></div>'
        f'{keys}<div class="list" id="{ident}-items">'
        "<noscript>The list needs JavaScript.</noscript></div></section>"
    )
