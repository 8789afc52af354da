"""The report's part for ``criticlab select`` runs: the method's accuracy next to plain
majority voting and pass@N (an oracle bound: some sample is right), fallbacks and cost, runs
side by side, and a browsable list of problems with their sampled answers, the votes and the
answer chosen.

Tables show ``metrics.json`` (computed from selections.jsonl when a run has none); the list's
right/wrong marks come from each answer against the reference answer."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from criticlab.grading import same_answer, solution_answer
from criticlab.report import charts
from criticlab.report.blocks import (
    Row,
    browser,
    config_details,
    data_script,
    run_columns,
    run_head,
    side_by_side,
    text,
)
from criticlab.report.loop_runs import Choice, SelectRun, is_right
from criticlab.report.tables import count, num, path, pct, seconds

FILTERS = (
    ("all", "All", "every problem"),
    ("right", "Right", "the chosen answer matches the reference"),
    ("wrong", "Wrong", "the chosen answer does not match the reference (or there is none)"),
    ("differs", "Not the majority", "the method chose another answer than the majority vote"),
    ("fallback", "Fallbacks", "the method fell back to the plain majority vote"),
)


def select_part(runs: Sequence[SelectRun], names: Sequence[str], colors: Sequence[str]
                ) -> tuple[list[tuple[str, str]], str]:
    """(navigation links, HTML) for the select runs of a report."""
    heads = []
    for i, (run, name, color) in enumerate(zip(runs, names, colors, strict=True)):
        meta = [f"<code>{escape(str(run.path))}</code>"]
        for key, value in (("method", run.method), ("critic", run.critic),
                           ("actor", run.model), ("samples", run.samples)):
            if value not in (None, ""):
                meta.append(f"{key} <b>{escape(str(value))}</b>")
        meta.append(f"{len(run.choices):,} problems")
        warn = ""
        if run.metrics is None:
            warn = ("No metrics.json in this run directory: its numbers are computed from "
                    "selections.jsonl.")
        elif run.metrics.get("complete") is False:
            warn = "This run is incomplete: its metrics cover the problems it finished."
        heads.append(run_head(f"select-{i + 1}", name, color, meta, escape(warn))
                     + config_details(run.config))
    body = (
        '<section id="select"><h2>Select: choosing one answer among N samples</h2>'
        '<div class="grid2"><div class="card"><h3>Accuracy: method, majority, pass@N</h3>'
        f"{accuracy_chart(runs, names, colors)}</div>"
        f'<div class="card"><h3>{"Side by side" if len(runs) > 1 else "Selection"}</h3>'
        f"{select_table(runs, names, colors)}</div></div>{''.join(heads)}</section>"
        + browser("selections", "select", "Problems and their samples", names, FILTERS, _KEYS)
        + data_script("selections-data", payload(runs, names)))
    return [("select", "Select"), ("selections", "Problems")], body


_KEYS = ('<div class="keys"><span class="meta">Votes: how many samples (or how much critic '
         "score) each distinct answer got; ✓/✗: the answer against the reference.</span></div>")


def _pass(run: SelectRun) -> Any:
    return run.shown_metrics.get(run.pass_key)


def _pass_name(runs: Sequence[SelectRun]) -> str:
    """``pass@N`` with the runs' N when they share one."""
    ns = {r.samples for r in runs}
    return f"pass@{ns.pop()}" if len(ns) == 1 and None not in ns else "pass@N"


def accuracy_chart(runs: Sequence[SelectRun], names: Sequence[str], colors: Sequence[str]) -> str:
    series = [charts.Series(n, c, [num(r.shown_metrics.get("accuracy")),
                                   num(r.shown_metrics.get("majority_accuracy")), num(_pass(r))])
              for r, n, c in zip(runs, names, colors, strict=True)]
    chart = charts.bar_chart(["method", "majority vote", _pass_name(runs)], series, y_max=100,
                             y_label="accuracy (%)", title="Selection accuracy", width=520,
                             height=250)
    return (chart + charts.legend(series) + '<p class="note">pass@N: some sample is right, the '
            "best any selection among them could do.</p>")


def select_table(runs: Sequence[SelectRun], names: Sequence[str], colors: Sequence[str]) -> str:
    ms = [r.shown_metrics for r in runs]

    def get(key: str) -> list[Any]:
        return [m.get(key) for m in ms]

    def tokens(m: Any) -> float | None:
        u = [num(path(m, "usage", k)) for k in ("prompt_tokens", "completion_tokens")]
        return None if u[0] is None or u[1] is None else u[0] + u[1]

    gains = [None if a is None or b is None else a - b
             for a, b in zip(get("accuracy"), get("majority_accuracy"), strict=True)]
    rows = [Row("Method", [r.method or None for r in runs], text),
            Row("Critic", [r.critic or None for r in runs], text),
            Row("Samples (N)", [r.samples for r in runs], count),
            Row("Problems", get("n"), count),
            Row("Accuracy (%)", get("accuracy"), pct, True, "accuracy"),
            Row("Majority vote (%)", get("majority_accuracy"), pct, True, "majority_accuracy"),
            Row(f"{_pass_name(runs)} (%)", [_pass(r) for r in runs], pct, True, "pass"),
            Row("Gain over majority (points)", gains, _signed, True, "gain"),
            Row("Fallbacks to majority", get("fallbacks"), count, None, "fallbacks"),
            Row("Errors (problems that raised)", get("errors"), count, False, "errors"),
            Row("Tokens", [tokens(m) for m in ms], count, None, "tokens"),
            Row("Model calls", [path(m, "usage", "calls") for m in ms], count, None, "calls"),
            Row("Elapsed", get("elapsed_s"), seconds, None, "elapsed_s")]
    note = ('<p class="note">Bold: the best value in the row.</p>' if len(runs) > 1 else "")
    return side_by_side("select", run_columns(runs, names, colors), rows) + note


def _signed(v: Any) -> str:
    x = num(v)
    return "—" if x is None else f"{x:+.1f}"


# --- the list of problems --------------------------------------------------------------------

def payload(runs: Sequence[SelectRun], names: Sequence[str]) -> dict[str, Any]:
    """What the problem browser renders: problems once, and per run each problem's samples,
    votes and chosen answer."""
    problems: list[dict[str, Any]] = []
    index: dict[tuple[Any, ...], int] = {}
    out = []
    for run, name in zip(runs, names, strict=True):
        items = []
        for c in run.choices:
            p = c.problem
            key = (p.id, p.question, p.reference_answer)
            if key not in index:
                index[key] = len(problems)
                problems.append({"id": p.id, "q": p.question, "ra": p.reference_answer})
            items.append(_item(c, index[key]))
        out.append({"label": name, "items": items})
    return {"problems": problems, "runs": out}


def _item(c: Choice, x: int) -> dict[str, Any]:
    samples = [{"st": list(s.steps), "fa": solution_answer(s),
                "ok": is_right(solution_answer(s), c.problem)} for s in c.solutions]
    votes = sorted(c.votes.items(), key=lambda kv: -kv[1])
    return {"x": x, "a": c.answer, "ok": c.right, "m": c.majority,
            "mok": is_right(c.majority, c.problem), "fb": c.fallback,
            "d": not (c.answer is None and c.majority is None)
            and not same_answer(c.answer, c.majority),
            "v": [[a, v, is_right(a, c.problem), same_answer(a, c.answer),
                   same_answer(a, c.majority)] for a, v in votes],
            "s": samples, "tok": c.usage.total_tokens}
