"""What the command modules share: the consoles, exit codes, option types and small
helpers for job commands."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from criticlab.registry import CRITICS, MODEL_SPECS

if TYPE_CHECKING:
    from criticlab.jobs import Executor

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

EXIT_INPUT = 2
EXIT_MODEL = 1


def error_line(message: object) -> None:
    """One ``error: ...`` line on stderr; the message is text, never rich markup (an install
    hint's ``'criticlab[embedded]'`` or a record's ``[1, 2]`` must survive)."""
    err.print(f"[red]error:[/red] {escape(str(message))}", soft_wrap=True)


def default_store_path() -> Path:
    if os.environ.get("CRITICLAB_STORE"):
        return Path(os.environ["CRITICLAB_STORE"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "criticlab" / "store.sqlite"


# Options shared by the commands that run a critic.
CriticOpt = Annotated[str, typer.Option("--critic", help=f"One of: {', '.join(CRITICS)}.")]
ModelOpt = Annotated[str, typer.Option(help=f"One of: {', '.join(MODEL_SPECS)}.")]
BaseUrlOpt = Annotated[
    str | None, typer.Option(help="OpenAI-compatible server for openai:MODEL.")
]
SamplesOpt = Annotated[int, typer.Option(help="Sampled critiques per solution (maj@n).")]
MaxTokensOpt = Annotated[int, typer.Option(help="Longest critique, in tokens.")]
TemplateOpt = Annotated[
    str | None, typer.Option(help="Prompt template file with {problem} and {steps}.")
]
ConcurrencyOpt = Annotated[int, typer.Option(help="Items critiqued at once.")]
ThreadsOpt = Annotated[
    int | None, typer.Option(help="CPU threads for in-process models (default 1).")
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds per model request.")]
StructuredOpt = Annotated[bool, typer.Option(
    "--structured", help="LM critics reply in their JSON schema, decoding constrained by the "
    "engine (llamacpp, embedded, openai-compatible servers, vllm): every reply parses.")]
LimitOpt = Annotated[int | None, typer.Option(help="Only the first N problems.")]
OutDir = Annotated[Path | None, typer.Option("--out", help="Run directory.")]


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-")[:80] or "run"


def job_progress() -> tuple[Progress, Callable[[int, int], None]]:
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=err, disable=not err.is_terminal)
    task = bar.add_task("problems", total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


Tick = Callable[[int, int], None]


def run_with_progress(title: str, out_dir: Path, job: Callable[[Tick], dict[str, Any]], *,
            shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
            note: str = "") -> None:
    """Run ``job(tick)`` under a progress bar, then print its metrics (``shown`` picks or
    flattens them) and where the results are."""
    bar, tick = job_progress()
    with bar:
        metrics = job(tick)
    bad = metrics.pop("input_errors", [])
    print_metrics(title, shown(metrics) if shown else metrics)
    err.print(f"results in {escape(str(out_dir))}/{note}")
    report_input_errors(bad)


def report_input_errors(errors: list[str]) -> None:
    """The records a job skipped as bad, one located error line each (after its results),
    and exit code 2."""
    for e in errors:
        error_line(e)
    if errors:
        raise typer.Exit(EXIT_INPUT)


def print_metrics(title: str, metrics: dict[str, object]) -> None:
    table = Table("metric", "value", title=title, title_justify="left")
    for key, value in metrics.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_short(v)}" for k, v in value.items())
        table.add_row(key, _short(value))
    out.print(table)


def _short(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 2 else f"{v:.1f}"
    if isinstance(v, list):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    return str(v)


ExecutorOpt = Annotated[str, typer.Option(
    help="local: this process; ray: Ray workers, each with its own model.")]
AddressOpt = Annotated[str | None, typer.Option(
    help="Ray cluster for --executor ray (auto, ray://HEAD:10001); default: a local one.")]
WorkersOpt = Annotated[int, typer.Option(help="Ray workers (--executor ray).")]


def make_executor(executor: str, address: str | None, workers: int) -> Executor:
    """The executor ``--executor`` names (Ray is imported only when a run needs it)."""
    from criticlab.jobs import LocalExecutor

    if executor == "local":
        return LocalExecutor()
    if executor == "ray":
        from criticlab.scale import RayExecutor

        return RayExecutor(address=address, workers=workers)
    from criticlab.errors import ConfigError

    raise ConfigError(f"unknown executor {executor!r}; use local or ray")
