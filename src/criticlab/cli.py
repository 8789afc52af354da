"""The ``criticlab`` command. Each command builds objects and calls the library; it owns the
terminal (rich tables, progress) and turns user errors into one line and exit code 2."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from criticlab.benchmarks.jsonl import read_examples
from criticlab.critics.base import Critic
from criticlab.errors import ConfigError, CriticlabError, InputError, ModelError
from criticlab.models.base import LanguageModel
from criticlab.registry import CRITICS, MODEL_SPECS, make_critic, make_model
from criticlab.store import CachedModel, Store
from criticlab.types import Critique, Example, Result

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="criticlab: judge a solution step by step, find the first wrong step and say why.",
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

EXIT_INPUT = 2
EXIT_MODEL = 1


def default_store_path() -> Path:
    if os.environ.get("CRITICLAB_STORE"):
        return Path(os.environ["CRITICLAB_STORE"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "criticlab" / "store.sqlite"


@app.command()
def critique(
    file: Annotated[str, typer.Argument(help="JSON or JSONL records ('-' for stdin).")],
    critic: Annotated[str, typer.Option(help=f"One of: {', '.join(CRITICS)}.")] = "hybrid",
    model: Annotated[str, typer.Option(help=f"One of: {', '.join(MODEL_SPECS)}.")] = "embedded",
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible server for openai:MODEL.")
    ] = None,
    samples: Annotated[int, typer.Option(help="Sampled critiques per solution (maj@n).")] = 1,
    max_tokens: Annotated[int, typer.Option(help="Longest critique, in tokens.")] = 1024,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON line per record.")] = False,
    template: Annotated[
        str | None, typer.Option(help="Prompt template file with {problem} and {steps}.")
    ] = None,
    store: Annotated[
        Path | None, typer.Option(help="SQLite store for the response cache.")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the store.")] = False,
    concurrency: Annotated[int, typer.Option(help="Records critiqued at once.")] = 4,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for in-process models (default 1).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per model request.")] = 120.0,
) -> None:
    """Critique each record's solution: a verdict per step and the first error, with why."""
    if samples < 1:
        raise ConfigError("--samples must be at least 1")
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if max_tokens < 1:
        raise ConfigError("--max-tokens must be at least 1")
    db = None if no_cache else Store(store or default_store_path())
    cached: list[CachedModel] = []

    @functools.cache
    def lm() -> LanguageModel:
        m = CachedModel(
            make_model(model, base_url=base_url, threads=threads, timeout=timeout,
                       concurrency=concurrency),
            db,
        )
        cached.append(m)
        return m

    built = make_critic(critic, lm, samples=samples, template=template, max_tokens=max_tokens)
    items = list(read_examples(file))
    examples = [x for x in items if isinstance(x, Example)]
    bad = [x for x in items if isinstance(x, InputError)]
    for e in bad:
        err.print(f"[red]error:[/red] {e}", markup=True, soft_wrap=True)
    try:
        results = asyncio.run(_critique_all(built, examples, concurrency, json_out, cached))
    finally:
        if db is not None:
            db.close()
    failed = [r for r in results if r.error is not None]
    _summary(results, cached)
    if bad:
        raise typer.Exit(EXIT_INPUT)
    if failed:
        raise typer.Exit(EXIT_MODEL)


async def _critique_all(
    critic: Critic, examples: Sequence[Example], concurrency: int, json_out: bool,
    models: Sequence[CachedModel],
) -> list[Result]:
    sem = asyncio.Semaphore(concurrency)

    async def one(ex: Example) -> Result:
        assert ex.solution is not None
        async with sem:
            try:
                return Result(ex, await critic.critique(ex.problem, ex.solution))
            except ModelError as e:
                return Result(ex, None, str(e))

    tasks = [asyncio.create_task(one(ex)) for ex in examples]
    results: list[Result] = []
    show_progress = err.is_terminal and len(examples) > 1
    with Progress(
        TextColumn("critiquing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err, transient=True, disable=not show_progress,
    ) as bar:
        job = bar.add_task("", total=len(tasks))
        try:
            for task in tasks:  # in input order, each printed as soon as it is ready
                r = await task
                results.append(r)
                bar.advance(job)
                _emit(r, json_out, bar.console if show_progress else out)
        finally:
            for t in tasks:
                t.cancel()
            for m in models:
                await m.aclose()
    return results


def _emit(r: Result, json_out: bool, console: Console) -> None:
    if json_out:
        sys.stdout.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    if r.error is not None:
        err.print(f"[red]error:[/red] {r.example.problem.id}: {r.error}", soft_wrap=True)
        return
    assert r.critique is not None
    console.print(render_critique(r.example, r.critique))
    console.print()
    console.file.flush()


def render_critique(ex: Example, c: Critique) -> Table:
    """A table with one row per step: the step, the verdict, the reason; the first error is
    highlighted."""
    steps = ex.solution.steps if ex.solution else ()
    if not c.parsed:
        head = Text("could not read the critic's output", style="bold yellow")
    elif c.first_error is not None:
        head = Text(f"first error: step {c.first_error + 1}", style="bold red")
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
    table.add_column("step", justify="right", no_wrap=True)
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


def _summary(results: Sequence[Result], cached: Sequence[CachedModel]) -> None:
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
    err.print(line, soft_wrap=True)


@app.command()
def models() -> None:
    """List the model specs and whether the embedded model is installed."""
    from criticlab.models.llamacpp import embedded_model_path

    try:
        where = str(embedded_model_path())
    except ConfigError as e:
        where = str(e)
    table = Table("spec", "what")
    table.add_row("embedded", f"SmolLM2-135M-Instruct (GGUF, in-process): {where}")
    table.add_row("llamacpp:PATH.gguf", "any GGUF file, in-process through llama-cpp-python")
    table.add_row("openai:MODEL", "any OpenAI-compatible server (--base-url, OPENAI_API_KEY)")
    out.print(table)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    logging.basicConfig(level=os.environ.get("CRITICLAB_LOG", "WARNING").upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    run: Callable[..., object] = app
    try:
        rc = run(args=list(argv) if argv is not None else None, standalone_mode=False)
    except (InputError, ConfigError) as e:
        err.print(f"[red]error:[/red] {e}", soft_wrap=True)
        sys.exit(EXIT_INPUT)
    except ModelError as e:
        err.print(f"[red]error:[/red] {e}", soft_wrap=True)
        sys.exit(EXIT_MODEL)
    except CriticlabError as e:
        err.print(f"[red]error:[/red] {e}", soft_wrap=True)
        sys.exit(EXIT_MODEL)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted: every response so far is in the store; run again to resume")
        sys.exit(130)
    except Exception as e:  # click's usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
