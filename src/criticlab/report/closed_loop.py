"""The report's part for ``criticlab refine`` runs: accuracy after each round, the draft→final
transition table with CL, CS and the identity ``Acc_after = Acc_before·CL + (1 −
Acc_before)·CS`` checked on the printed numbers, cost per solved problem, several runs side by
side, and a browsable list of trajectories (filter: fixed, broken, still wrong).

Tables show ``metrics.json`` (computed from the trajectories when a run has none); the list's
right/wrong marks come from each round's answer against the reference answer. This module
gives ``templates/refine.html.j2`` the numbers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from criticlab.grading import solution_answer
from criticlab.infer.refine import Round
from criticlab.report import charts
from criticlab.report.loop_runs import TRANSITION_KEYS, RefineRun, transition
from criticlab.report.tables import Row, columns, count, dec3, num, path, pct, seconds, signed, text

TOLERANCE = 1e-9  # the identity is exact on the counts; this only absorbs float rounding
ARROW = {"c->c": "c→c", "c->i": "c→i", "i->c": "i→c", "i->i": "i→i"}
FILTERS = (
    ("all", "All", "every trajectory"),
    ("i->c", "Fixed (i→c)", "the draft was wrong, the final answer is right"),
    ("c->i", "Broken (c→i)", "the draft was right, the final answer is wrong"),
    ("i->i", "Still wrong (i→i)", "wrong before and after"),
    ("c->c", "Kept right (c→c)", "right before and after"),
)
Rows = list[tuple[str, str, str]]  # (key, label, value)


def round_name(r: int) -> str:
    return "draft" if r == 0 else f"round {r}"


@dataclass(frozen=True)
class RefineRunView:
    """One refine run as ``templates/refine.html.j2`` draws it."""

    run: RefineRun
    name: str
    color: str
    warn: str
    rounds: list[tuple[str, str, str]]  # (round, accuracy, difference to the draft)
    transitions: Mapping[str, str]  # the four counts and the row and column totals
    closed_loop: tuple[Rows, Rows]  # CL and CS; both sides of the identity and its check
    holds: bool | None
    cost: Rows


@dataclass(frozen=True)
class RefinePart:
    nav: list[tuple[str, str]]
    names: Sequence[str]
    chart: Markup | None
    columns: list[tuple[str, str, str]]
    comparison: list[Row]
    runs: list[RefineRunView]
    payload: dict[str, Any]
    filters: tuple[tuple[str, str, str], ...] = FILTERS


def refine_part(runs: Sequence[RefineRun], names: Sequence[str], colors: Sequence[str]
                ) -> RefinePart:
    """What the report shows of its refine runs."""
    many = len(runs) > 1
    return RefinePart(
        [("refine", "Refine"), *((f"refine-{i + 1}", n) for i, n in enumerate(names) if many),
         ("trajectories", "Trajectories")], names,
        accuracy_chart(runs, names, colors), columns(runs, names, colors),
        comparison(runs) if many else [],
        [run_view(*a) for a in zip(runs, names, colors, strict=True)], payload(runs, names))


# --- charts and tables -----------------------------------------------------------------------

def accuracy_chart(runs: Sequence[RefineRun], names: Sequence[str], colors: Sequence[str]
                   ) -> Markup | None:
    accs = [_accuracy(r) for r in runs]
    depth = max((len(a) for a in accs), default=0)
    if not depth:
        return None
    series = [charts.Series(n, c, [a[i] if i < len(a) else None for i in range(depth)])
              for n, c, a in zip(names, colors, accs, strict=True)]
    return charts.bar_chart([round_name(i) for i in range(depth)], series, y_max=100,
                            y_label="accuracy (%)", title="Accuracy after each round",
                            width=560, height=260) + charts.legend(series)


def _accuracy(run: RefineRun) -> list[float | None]:
    acc = run.shown_metrics.get("accuracy_by_round") or []
    return [num(v) for v in acc]


def rounds_rows(run: RefineRun) -> list[tuple[str, str, str]]:
    acc = _accuracy(run)
    return [(round_name(i), pct(v),
             "" if i == 0 or v is None or acc[0] is None else f"{v - acc[0]:+.1f}")
            for i, v in enumerate(acc)]


def transition_cells(t: Mapping[str, Any]) -> dict[str, str]:
    """The draft → final table: the four counts, ``c``/``i`` (drafts right, wrong) and
    ``to_c``/``to_i`` (final answers right, wrong) and ``n``."""
    cc, ci, ic, ii = (num(t.get(k)) or 0.0 for k in TRANSITION_KEYS)
    return {**{k: count(t.get(k)) for k in TRANSITION_KEYS}, "c": count(cc + ci),
            "i": count(ic + ii), "to_c": count(cc + ic), "to_i": count(ci + ii),
            "n": count(t.get("n"))}


def identity(t: Mapping[str, Any]) -> tuple[bool | None, float, float]:
    """Whether ``Acc_after = Acc_before·CL + (1 − Acc_before)·CS`` holds on these numbers (None
    when they are missing), its left and right side (fractions). CL or CS undefined (no draft
    right, or none wrong) leaves out its term, whose weight is then 0."""
    before, after = num(t.get("acc_before")), num(t.get("acc_after"))
    if before is None or after is None:
        return None, 0.0, 0.0
    b, lhs = before / 100, after / 100
    rhs = b * (num(t.get("CL")) or 0.0) + (1 - b) * (num(t.get("CS")) or 0.0)
    counts = [num(t.get(k)) for k in TRANSITION_KEYS]
    n = num(t.get("n"))
    if n and all(c is not None for c in counts):
        cc, ci, ic, _ = (c or 0.0 for c in counts)
        if abs((cc + ci) / n - b) > TOLERANCE or abs((cc + ic) / n - lhs) > TOLERANCE:
            return False, lhs, rhs  # the counts do not give these accuracies
    return abs(lhs - rhs) <= TOLERANCE, lhs, rhs


def closed_loop_rows(t: Mapping[str, Any]) -> tuple[Rows, Rows]:
    """CL and CS with their counts; the identity with both sides printed and checked."""
    cl, cs = num(t.get("CL")), num(t.get("CS"))
    cc, ci, ic, ii = (num(t.get(k)) or 0.0 for k in TRANSITION_KEYS)
    holds, lhs, rhs = identity(t)
    b = (num(t.get("acc_before")) or 0.0) / 100
    if holds is None:
        left = right = check = "—"
    else:
        left = f"{100 * lhs:.1f}%"
        right = f"{b:.3f} × {dec3(cl)} + {1 - b:.3f} × {dec3(cs)} = {100 * rhs:.1f}%"
        check = (f"✓ holds: {left} = {100 * rhs:.1f}%" if holds else
                 f"✗ does not hold: off by {100 * (lhs - rhs):+.3g} points")
    return ([("acc_before", "Acc_before (draft)", pct(t.get("acc_before")) + "%"),
             ("CL", "CL = P(right after | right before)",
              f"{dec3(cl)} ({count(cc)} of {count(cc + ci)})"),
             ("CS", "CS = P(right after | wrong before)",
              f"{dec3(cs)} ({count(ic)} of {count(ic + ii)})")],
            [("lhs", "Acc_after (final)", left),
             ("rhs", "Acc_before·CL + (1 − Acc_before)·CS", right),
             ("check", "Identity", check)])


def _cost(m: Mapping[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """(key, label, value, format) of the cost rows, next to the final accuracy."""
    t = m.get("transitions") or {}
    cc, ic = num(t.get("c->c")), num(t.get("i->c"))
    solved = None if cc is None or ic is None else cc + ic
    return [
        ("acc_after", "Final accuracy (%)", t.get("acc_after"), pct),
        ("solved", "Solved", solved, count),
        ("tokens_per_solved", "Tokens per solved", m.get("tokens_per_solved"), count),
        ("calls_per_solved", "Calls per solved", m.get("calls_per_solved"), _two),
        ("mean_rounds_used", "Mean rounds used", m.get("mean_rounds_used"), _two),
        ("prompt_tokens", "Prompt tokens", path(m, "usage", "prompt_tokens"), count),
        ("completion_tokens", "Completion tokens", path(m, "usage", "completion_tokens"), count),
        ("calls", "Model calls", path(m, "usage", "calls"), count),
        ("errors", "Errors", m.get("errors"), count),
        ("elapsed_s", "Elapsed", m.get("elapsed_s"), seconds),
    ]


def _two(v: Any) -> str:
    x = num(v)
    return "—" if x is None else f"{x:.2f}"


def comparison(runs: Sequence[RefineRun]) -> list[Row]:
    ms = [r.shown_metrics for r in runs]
    ts = [m.get("transitions") or {} for m in ms]

    def tr(key: str) -> list[Any]:
        return [t.get(key) for t in ts]

    rows = [Row("Strategy", [r.strategy or None for r in runs], text),
            Row("Critic", [r.critic or None for r in runs], text),
            Row("Problems", [m.get("n") for m in ms], count),
            Row("Draft accuracy (%)", tr("acc_before"), pct),
            Row("Final accuracy (%)", tr("acc_after"), pct, True),
            Row("Gain (points)", [None if a is None or b is None else a - b
                                  for a, b in zip(tr("acc_after"), tr("acc_before"),
                                                  strict=True)], signed, True),
            *(Row(ARROW[k], tr(k), count, {"c->i": False, "i->c": True}.get(k), k)
              for k in TRANSITION_KEYS),
            Row("CL", tr("CL"), dec3, True), Row("CS", tr("CS"), dec3, True),
            Row("Identity", [_holds(identity(t)[0]) for t in ts], text)]
    costs = [{k: v for k, _, v, _ in _cost(m)} for m in ms]
    for key, label, _, fmt in _cost({})[2:]:  # after accuracy and solved, shown above
        better = False if key in ("tokens_per_solved", "calls_per_solved") else None
        rows.append(Row(label, [c[key] for c in costs], fmt, better, key))
    return rows


def _holds(holds: bool | None) -> str | None:
    return None if holds is None else "✓ holds" if holds else "✗ fails"


def run_view(run: RefineRun, name: str, color: str) -> RefineRunView:
    m = run.shown_metrics
    warn = ""
    if run.metrics is None:
        warn = ("No metrics.json in this run directory: the numbers below are computed from "
                "trajectories.jsonl.")
    elif m.get("complete") is False:
        warn = "This run is incomplete: its metrics cover the problems it finished."
    mismatch = _mismatch(run)
    if mismatch:
        warn += (" " if warn else "") + mismatch
    t = m.get("transitions") or {}
    return RefineRunView(run, name, color, warn, rounds_rows(run), transition_cells(t),
                         closed_loop_rows(t), identity(t)[0],
                         [(k, label, fmt(v)) for k, label, v, fmt in _cost(m)])


def _mismatch(run: RefineRun) -> str:
    """A warning when the trajectories' own right/wrong counts differ from metrics.json."""
    t = (run.metrics or {}).get("transitions")
    if not isinstance(t, Mapping) or t.get("n") != len(run.trajectories):
        return ""
    seen = Counter(transition(r) for r in run.right)
    if all(num(t.get(k)) == seen[k] for k in TRANSITION_KEYS):
        return ""
    mine = ", ".join(f"{ARROW[k]} {seen[k]}" for k in TRANSITION_KEYS)
    return (f"The trajectories' answers against the reference give {mine}, which differs from "
            "metrics.json: the list below follows the answers.")


# --- the list of trajectories ----------------------------------------------------------------

def payload(runs: Sequence[RefineRun], names: Sequence[str]) -> dict[str, Any]:
    """What the trajectory browser renders: problems once, and per run each trajectory's
    transition and rounds."""
    problems: list[dict[str, Any]] = []
    index: dict[tuple[Any, ...], int] = {}
    out = []
    for run, name in zip(runs, names, strict=True):
        items = []
        for traj, right in zip(run.trajectories, run.right, strict=True):
            p = traj.problem
            key = (p.id, p.question, p.reference_answer)
            if key not in index:
                index[key] = len(problems)
                problems.append({"id": p.id, "q": p.question, "ra": p.reference_answer})
            items.append({"x": index[key], "t": transition(right),
                          "r": [_round(r, ok) for r, ok in zip(traj.rounds, right, strict=True)],
                          "tok": traj.usage.total_tokens})
        out.append({"label": name, "items": items})
    return {"problems": problems, "runs": out}


def _round(r: Round, ok: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"k": r.kind, "st": list(r.solution.steps),
                         "fa": solution_answer(r.solution), "ok": ok,
                         "tok": r.usage.total_tokens}
    c = r.critique
    if c is not None:
        d["c"] = {"fe": c.first_error, "v": c.verdict, "f": c.feedback, "n": c.critic,
                  "p": c.parsed,
                  "sv": [[s.index, s.verdict, s.explanation] for s in c.steps
                         if s.explanation or s.verdict == "incorrect"]}
    return d

