"""The report's part for ``criticlab select`` runs: the method's accuracy next to plain
majority voting and pass@N (an oracle bound: some sample is right), fallbacks and cost, runs
side by side, and a browsable list of problems with their sampled answers, the votes and the
answer chosen.

Tables show ``metrics.json`` (computed from selections.jsonl when a run has none); the list's
right/wrong marks come from each answer against the reference answer. This module gives
``templates/select.html.j2`` the numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from criticlab.grading import same_answer, solution_answer
from criticlab.report import charts
from criticlab.report.loop_runs import Choice, SelectRun, is_right
from criticlab.report.tables import Row, columns, count, num, path, pct, seconds, signed, text

FILTERS = (
    ("all", "All", "every problem"),
    ("right", "Right", "the chosen answer matches the reference"),
    ("wrong", "Wrong", "the chosen answer does not match the reference (or there is none)"),
    ("differs", "Not the majority", "the method chose another answer than the majority vote"),
    ("fallback", "Fallbacks", "the method fell back to the plain majority vote"),
)


@dataclass(frozen=True)
class SelectPart:
    """What ``templates/select.html.j2`` draws of the select runs; ``runs``: (run, name,
    colour, warning)."""

    names: Sequence[str]
    chart: Markup
    columns: list[tuple[str, str, str]]
    rows: list[Row]
    runs: list[tuple[SelectRun, str, str, str]]
    payload: dict[str, Any]
    filters: tuple[tuple[str, str, str], ...] = FILTERS
    nav: tuple[tuple[str, str], ...] = (("select", "Select"), ("selections", "Problems"))


def select_part(runs: Sequence[SelectRun], names: Sequence[str], colors: Sequence[str]
                ) -> SelectPart:
    """What the report shows of its select runs."""
    return SelectPart(names, accuracy_chart(runs, names, colors), columns(runs, names, colors),
                      select_rows(runs),
                      [(r, n, c, _warn(r)) for r, n, c in zip(runs, names, colors, strict=True)],
                      payload(runs, names))


def _warn(run: SelectRun) -> str:
    if run.metrics is None:
        return ("No metrics.json in this run directory: its numbers are computed from "
                "selections.jsonl.")
    if run.metrics.get("complete") is False:
        return "This run is incomplete: its metrics cover the problems it finished."
    return ""


def _pass(run: SelectRun) -> Any:
    return run.shown_metrics.get(run.pass_key)


def _pass_name(runs: Sequence[SelectRun]) -> str:
    """``pass@N`` with the runs' N when they share one."""
    ns = {r.samples for r in runs}
    return f"pass@{ns.pop()}" if len(ns) == 1 and None not in ns else "pass@N"


def accuracy_chart(runs: Sequence[SelectRun], names: Sequence[str], colors: Sequence[str]
                   ) -> Markup:
    series = [charts.Series(n, c, [num(r.shown_metrics.get("accuracy")),
                                   num(r.shown_metrics.get("majority_accuracy")), num(_pass(r))])
              for r, n, c in zip(runs, names, colors, strict=True)]
    return charts.bar_chart(["method", "majority vote", _pass_name(runs)], series, y_max=100,
                            y_label="accuracy (%)", title="Selection accuracy", width=520,
                            height=250) + charts.legend(series)


def select_rows(runs: Sequence[SelectRun]) -> list[Row]:
    ms = [r.shown_metrics for r in runs]

    def get(key: str) -> list[Any]:
        return [m.get(key) for m in ms]

    def tokens(m: Any) -> float | None:
        u = [num(path(m, "usage", k)) for k in ("prompt_tokens", "completion_tokens")]
        return None if u[0] is None or u[1] is None else u[0] + u[1]

    gains = [None if a is None or b is None else a - b
             for a, b in zip(get("accuracy"), get("majority_accuracy"), strict=True)]
    return [Row("Method", [r.method or None for r in runs], text),
            Row("Critic", [r.critic or None for r in runs], text),
            Row("Samples (N)", [r.samples for r in runs], count),
            Row("Problems", get("n"), count),
            Row("Accuracy (%)", get("accuracy"), pct, True, "accuracy"),
            Row("Majority vote (%)", get("majority_accuracy"), pct, True, "majority_accuracy"),
            Row(f"{_pass_name(runs)} (%)", [_pass(r) for r in runs], pct, True, "pass"),
            Row("Gain over majority (points)", gains, signed, True, "gain"),
            Row("Fallbacks to majority", get("fallbacks"), count, None, "fallbacks"),
            Row("Errors (problems that raised)", get("errors"), count, False, "errors"),
            Row("Tokens", [tokens(m) for m in ms], count, None, "tokens"),
            Row("Model calls", [path(m, "usage", "calls") for m in ms], count, None, "calls"),
            Row("Elapsed", get("elapsed_s"), seconds, None, "elapsed_s")]


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
