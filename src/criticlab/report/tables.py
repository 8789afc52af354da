"""The report's metric tables, as HTML strings: one run's tables, the side-by-side
comparison of several runs, and the published ProcessBench numbers. Values come from each
run's ``metrics.json``; nothing is recomputed except the parse-failure rate and usage of a
run that has no ``metrics.json``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from criticlab.metrics import parse_failure_rate
from criticlab.report.published import SUBSET_NAMES, SUBSETS
from criticlab.report.run import Run

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


def _parse_row(run: Run, cols: int) -> str:
    return (f'<tr class="parse"><td>Parse failures</td><td colspan="{cols}">'
            f"{rate(parse_rate(run))}</td></tr>")


# --- one run ------------------------------------------------------------------------------

def processbench_table(run: Run) -> str:
    values = pb(run)
    head = ("<thead><tr><th>Subset</th><th>n</th><th>erroneous</th><th>correct</th>"
            "<th>acc_err</th><th>acc_cor</th><th>F1</th></tr></thead><tbody>")
    rows = []
    for s in pb_subsets(run):
        v = values[s]
        rows.append(f'<tr data-subset="{escape(s)}"><td>{escape(subset_name(s))}</td>'
                    f"<td>{count(v.get('n'))}</td><td>{count(v.get('n_err'))}</td>"
                    f"<td>{count(v.get('n_cor'))}</td><td>{pct(v.get('acc_err'))}</td>"
                    f"<td>{pct(v.get('acc_cor'))}</td><td>{pct(v.get('f1'))}</td></tr>")
    avg = values.get("average")
    if isinstance(avg, Mapping):
        cells = "".join(f"<td>{pct(avg[k]) if k in avg else ''}</td>"
                        for k in ("acc_err", "acc_cor", "f1"))
        rows.append('<tr class="total" data-subset="average"><td>Average</td><td></td>'
                    f"<td></td><td></td>{cells}</tr>")
    rows.append(_parse_row(run, 6))
    return (f'<table class="metrics" data-table="processbench">{head}{"".join(rows)}'
            "</tbody></table>")


SECTIONS: tuple[tuple[str, str, tuple[tuple[str, str, Fmt], ...]], ...] = (
    ("judgment", "Judgment", (
        ("n", "n", count), ("accuracy", "Accuracy", pct), ("precision", "Precision", pct),
        ("recall", "Recall", pct), ("f1", "F1", pct), ("auroc", "AUROC", dec3))),
    ("calibration", "Calibration", (
        ("ece", "ECE (10 bins)", dec3), ("brier", "Brier", dec3), ("auroc", "AUROC", dec3))),
    ("steps", "Step verdicts", (
        ("precision", "Precision", pct), ("recall", "Recall", pct), ("f1", "F1", pct))),
)


def section_table(run: Run, name: str, values: Mapping[str, Any],
              rows: Sequence[tuple[str, str, Fmt]]) -> str:
    body = "".join(f'<tr data-key="{escape(k)}"><td>{escape(label)}</td><td>{fmt(values.get(k))}'
                   "</td></tr>" for k, label, fmt in rows)
    note = ('<p class="note">Whole-solution verdict; positive class: incorrect.</p>'
            if name == "judgment" else "")
    return (f'<table class="metrics" data-table="{name}"><tbody>{body}'
            f"{_parse_row(run, 1)}</tbody></table>{note}")


def _usage(run: Run) -> Mapping[str, Any]:
    usage = (run.metrics or {}).get("usage")
    if usage:
        return usage
    total = {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0, "cached": 0}
    for r in run.results:
        if r.critique is not None:
            for k, v in r.critique.usage.to_dict().items():
                total[k] += v
    return total


def run_table(run: Run) -> str:
    m, u = run.metrics or {}, _usage(run)
    n = m.get("n", len(run.results))
    errors = m.get("errors", sum(1 for r in run.results if r.error or r.critique is None))
    rows = [("n", "Items", count(n)), ("errors", "Errors (critic raised)", count(errors)),
            ("prompt_tokens", "Prompt tokens", count(u.get("prompt_tokens"))),
            ("completion_tokens", "Completion tokens", count(u.get("completion_tokens"))),
            ("calls", "Model calls", count(u.get("calls"))),
            ("cached", "Cached calls", count(u.get("cached"))),
            ("elapsed_s", "Elapsed", seconds(m.get("elapsed_s")))]
    body = "".join(f'<tr data-key="{k}"><td>{label}</td><td>{v}</td></tr>' for k, label, v in rows)
    return (f'<table class="metrics" data-table="run"><tbody>{body}{_parse_row(run, 1)}'
            "</tbody></table>")


# --- several runs -----------------------------------------------------------------------

def _comparison_rows(runs: Sequence[Run]) -> list[tuple[str, str, Getter, Fmt, bool | None]]:
    """(group, label, getter on metrics, format, higher is better) for each row shown."""
    rows: list[tuple[str, str, Getter, Fmt, bool | None]] = []
    subsets = order_subsets({s for r in runs for s in pb_subsets(r)})

    def pb_get(s: str, k: str) -> Getter:
        return lambda m: path(m, "processbench", s, k)

    for key, group in (("f1", "ProcessBench F1"), ("acc_err", "ProcessBench acc_err"),
                       ("acc_cor", "ProcessBench acc_cor")):
        rows += [(group, subset_name(s), pb_get(s, key), pct, True) for s in subsets]
        if key == "f1" and subsets:
            rows.append((group, "Average", pb_get("average", "f1"), pct, True))
    for key, title, fields in SECTIONS:
        if any((r.metrics or {}).get(key) for r in runs):
            for k, label, fmt in fields:
                if k != "n":
                    better = k not in ("ece", "brier")
                    rows.append((title, label, _getter(key, k), fmt, better))
    rows.append(("Reliability", "Parse failures", lambda m: m.get("parse_failure_rate"), rate,
                 False))
    rows.append(("Reliability", "Errors (critic raised)", lambda m: m.get("errors"), count, False))
    for k, label in (("prompt_tokens", "Prompt tokens"), ("completion_tokens",
                     "Completion tokens"), ("calls", "Model calls"), ("cached", "Cached calls")):
        rows.append(("Cost", label, _getter("usage", k), count, None))
    rows.append(("Cost", "Elapsed", lambda m: m.get("elapsed_s"), seconds, None))
    rows.append(("Cost", "Items", lambda m: m.get("n"), count, None))
    return rows


def _getter(section: str, key: str) -> Getter:
    return lambda m: path(m, section, key)


def comparison_table(runs: Sequence[Run], labels: Sequence[str], colors: Sequence[str]) -> str:
    head = "".join(
        f'<th class="runcol"><span class="swatch" style="background:{c}"></span>{escape(lab)}'
        f"<small>{escape(r.path.name)}</small></th>"
        for r, lab, c in zip(runs, labels, colors, strict=True))
    out = ['<table class="metrics compare" data-table="comparison"><thead><tr><th>Metric</th>'
           f"{head}</tr></thead><tbody>"]
    last_group = ""
    for group, label, get, fmt, better in _comparison_rows(runs):
        values = []
        for r in runs:
            m = dict(r.metrics or {})
            if group == "Reliability" and label == "Parse failures":
                m["parse_failure_rate"] = parse_rate(r)
            values.append(num(get(m)))
        if all(v is None for v in values):
            continue
        if group != last_group:
            out.append(f'<tr class="group"><th colspan="{len(runs) + 1}">{escape(group)}</th></tr>')
            last_group = group
        known = [v for v in values if v is not None]
        best = None
        if better is not None and len(known) > 1 and len(set(known)) > 1:
            best = max(known) if better else min(known)
        cells = "".join(f'<td{" class=best" if v is not None and v == best else ""}>{fmt(v)}</td>'
                        for v in values)
        cls = ' class="parse"' if label == "Parse failures" else ""
        out.append(f"<tr{cls}><td>{escape(label)}</td>{cells}</tr>")
    out.append("</tbody></table>")
    out.append('<p class="note">Bold: the best value in the row. ProcessBench values are '
               "percentages; parse failures count as wrong predictions in the metrics.</p>")
    return "".join(out)


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


def published_table(runs: Sequence[Run], labels: Sequence[str],
               published: Mapping[str, Mapping[str, Any]]) -> str:
    subsets = order_subsets(set(SUBSETS) | {s for r in runs for s in pb_subsets(r)})
    cols = [*subsets, "average"]
    head = "".join(f"<th>{escape(subset_name(s) if s != 'average' else 'Average')}</th>"
                   for s in cols)
    out = [f'<table class="metrics" data-table="published"><thead><tr><th>Model</th>'
           f'<th class="left">Decoding</th>{head}</tr></thead><tbody>']
    notes: list[str] = []
    for r, lab in zip(runs, labels, strict=True):
        values = pb(r)
        if not values:
            continue
        ref = match_published(r.model, published)
        cells: list[str] = []
        for s in cols:
            v = num(path(values, s, "f1"))
            delta = ""
            ref_v = num(published[ref].get(s)) if ref else None
            if v is not None and ref_v is not None:
                d = v - ref_v
                delta = (f'<span class="delta {"up" if d >= 0 else "down"}">{d:+.1f} vs '
                         "published</span>")
            cells.append(f"<td>{pct(v)}{delta}</td>")
        out.append(f'<tr class="mine"><td>{escape(lab)}<span class="badge mine">this run</span>'
                   f'</td><td class="left">{escape(r.decoding or "—")}</td>{"".join(cells)}</tr>')
        missing = [s for s in SUBSETS if s not in values]
        if missing and path(values, "average", "f1") is not None:
            notes.append(f"{escape(lab)}: average over its {len(pb_subsets(r))} subsets only "
                         f"(no {', '.join(subset_name(s) for s in missing)}), so not directly "
                         "comparable with a published average.")
    ranked = sorted(published.items(), key=lambda kv: -(num(kv[1].get("average")) or -1.0))
    for name, row in ranked:
        row_cells = "".join(f"<td>{pct(row.get(s))}</td>" for s in cols)
        out.append(f'<tr data-model="{escape(name)}"><td>{escape(name)}'
                   f'<span class="badge pub">published</span></td>'
                   f'<td class="left">{escape(str(row.get("decoding", "—")))}</td>{row_cells}</tr>')
    out.append("</tbody></table>")
    out.append('<p class="note">F1 in percent. Published: ProcessBench (Zheng et al., 2024); '
               "maj@8 = majority vote over 8 samples at temperature 1.0, top_p 0.9.</p>")
    out += [f'<p class="note">{n}</p>' for n in notes]
    return "".join(out)
