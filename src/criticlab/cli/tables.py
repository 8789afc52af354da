"""Terminal rendering for the CLI: critiques as tables, metric tables, run summaries."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from criticlab.cache import CachedModel
from criticlab.evaluate import EvalProgress
from criticlab.types import Critique, Example, Result


def render_critique(ex: Example, c: Critique) -> Table:
    """A table with one row per step: the step, the verdict, the reason; the first error is
    highlighted."""
    steps = ex.solution.steps if ex.solution else ()
    unit = "step"
    if c.critic == "constraints":  # one verdict per constraint of the instruction, not per step
        unit = "constraint"
        steps = tuple(s.explanation.split(": ", 1)[0] for s in c.steps)
        c = replace(c, steps=tuple(replace(s, explanation=s.explanation.split(": ", 1)[-1])
                                   for s in c.steps))
    if not c.parsed:
        head = Text("could not read the critic's output", style="bold yellow")
    elif c.first_error is not None:
        head = Text(f"first error: {unit} {c.first_error + 1}", style="bold red")
    elif c.verdict == "correct":
        head = Text("no error found", style="bold green")
    else:
        head = Text("undecided: nothing the critic could check", style="bold yellow")
    question = ex.problem.question.strip().replace("\n", " ")
    title = Text.assemble(
        (f"{ex.problem.id}", "bold"), f"  [{c.critic}]  ", head,
        f"\n{question[:300]}{'…' if len(question) > 300 else ''}",
    )
    table = Table(title=title, title_justify="left", show_lines=False, expand=True)
    table.add_column(unit, justify="right", no_wrap=True)
    table.add_column("text", ratio=3)
    table.add_column("verdict", no_wrap=True)
    table.add_column("why", ratio=2)
    colours = {"correct": "green", "incorrect": "red", "unknown": "dim"}
    verdicts = {s.index: s for s in c.steps}
    for i, text in enumerate(steps):
        v = verdicts.get(i)
        verdict = v.verdict if v else "unknown"
        is_first = i == c.first_error
        # Text(), not str: model output and "[arithmetic]" tags must not be read as markup.
        table.add_row(
            str(i + 1),
            Text(text if len(text) <= 400 else text[:400] + "…"),
            Text(verdict + (" ◀ first error" if is_first else ""), style=colours[verdict]),
            Text(v.explanation if v else ""),
            style="on grey15" if is_first else None,
        )
    if c.feedback and c.parsed:
        table.caption = Text(_clip(c.feedback, 600))
        table.caption_justify = "left"
    elif not c.parsed:
        table.caption = Text(f"{c.feedback}\nraw: {_clip(c.raw.strip(), 600)}")
        table.caption_justify = "left"
    return table


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n] + "…"


def summary(results: Sequence[Result], cached: Sequence[CachedModel]) -> str:
    n = len(results)
    crits = [r.critique for r in results if r.critique is not None]
    flagged = sum(1 for c in crits if c.parsed and c.first_error is not None)
    correct = sum(1 for c in crits if c.parsed and c.first_error is None and c.verdict == "correct")
    unparsed = sum(1 for c in crits if not c.parsed)
    undecided = len(crits) - flagged - correct - unparsed
    failed = n - len(crits)
    parts = [f"{n} critiqued", f"{flagged} with an error", f"{correct} correct"]
    if undecided:
        parts.append(f"{undecided} undecided")
    if unparsed:
        parts.append(f"{unparsed} unparsed")
    if failed:
        parts.append(f"{failed} failed")
    calls = sum(m.stats.calls for m in cached)
    hits = sum(m.stats.hits for m in cached)
    line = ", ".join(parts)
    if cached:
        line += f"; model calls: {calls} ({hits} answered from the store)"
    return line


def _fmt(v: Any, pct: bool = True) -> str:
    if v is None:
        return "—"
    return f"{v:.1f}" if pct else f"{v:.3f}"


def metrics_table(metrics: dict[str, Any], title: str = "") -> Table:
    """ProcessBench per subset (acc_err, acc_cor, F1) and its average, judgment scores, the
    parse-failure rate and the share of items judged at all, each on its own line."""
    table = Table(title=title or None, title_justify="left")
    table.add_column("")
    for col in ("n", "acc_err", "acc_cor", "F1"):
        table.add_column(col, justify="right")
    pb = metrics.get("processbench") or {}
    for name, row in pb.items():
        if name == "average":
            continue
        table.add_row(name, str(row["n"]), _fmt(row["acc_err"]), _fmt(row["acc_cor"]),
                      _fmt(row["f1"]))
    if len([k for k in pb if k != "average"]) > 1:
        table.add_row(Text("average", style="bold"), "", "", "",
                      Text(_fmt(pb["average"]["f1"]), style="bold"), end_section=True)
    j = metrics.get("judgment")
    if j:
        table.add_section()
        table.add_row("judgment accuracy", str(j["n"]), "", "", _fmt(j["accuracy"]))
        table.add_row("judgment F1 (incorrect = positive)", "", "", "", _fmt(j["f1"]))
        if j.get("auroc") is not None:
            table.add_row("judgment AUROC", "", "", "", _fmt(j["auroc"], pct=False))
    cal = metrics.get("calibration")
    if cal:
        table.add_row("ECE / Brier", str(cal["n"]), "", "",
                      f"{cal['ece']:.3f} / {cal['brier']:.3f}")
    table.add_section()
    rate = metrics.get("parse_failure_rate", 0.0)
    style = "yellow" if rate else None
    table.add_row(Text("parse failures", style=style or ""), "", "", "",
                  Text(f"{100 * rate:.1f}%", style=style or ""))
    if "coverage" in metrics:  # items the critic judged at all; how the rest counted in F1
        table.add_row(f"judged (the rest counted as {metrics.get('abstain', 'unknown')})",
                      "", "", "", f"{100 * metrics['coverage']:.1f}%")
    if metrics.get("errors"):
        table.add_row(Text("engine errors", style="red"), str(metrics["errors"]), "", "", "")
    return table


@contextlib.contextmanager
def eval_progress(console: Console) -> Iterator[Callable[[EvalProgress], None]]:
    """A progress bar for ``evaluate``: items, items/s, ETA, tokens/s and parse failures so
    far. Drawn only on a terminal."""
    bar = Progress(
        TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"), console=console, transient=False,
        disable=not console.is_terminal,
    )
    task = bar.add_task("", total=None, stats="")

    def update(p: EvalProgress) -> None:
        elapsed = max(time.monotonic() - p.started, 1e-9)
        fresh = max(p.done - p.resumed, 0)
        stats = (f"{fresh / elapsed:.2f} items/s · "
                 f"{p.usage.completion_tokens / elapsed:.0f} tok/s · "
                 f"{p.unparsed} unparsed" + (f" · {p.errors} errors" if p.errors else ""))
        bar.update(task, total=p.total, completed=p.done, stats=stats)

    with bar:
        yield update
