"""``criticlab critique``: critique records from a file or stdin, print each as it is ready
(a table, or one JSON line with ``--json``)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from criticlab.cli.common import (
    EXIT_INPUT,
    EXIT_MODEL,
    BaseUrlOpt,
    ConcurrencyOpt,
    CriticOpt,
    MaxTokensOpt,
    ModelOpt,
    SamplesOpt,
    StructuredOpt,
    TemplateOpt,
    ThreadsOpt,
    TimeoutOpt,
    default_store_path,
    err,
    error_line,
    out,
)
from criticlab.cli.tables import render_critique, summary
from criticlab.critics.base import Critic
from criticlab.data.jsonl import read_examples
from criticlab.engines import Engines, EngineSpec
from criticlab.errors import ConfigError, InputError, ModelError
from criticlab.store import Store
from criticlab.types import Example, Result


def critique(
    file: Annotated[str, typer.Argument(help="JSON or JSONL records ('-' for stdin).")],
    critic: CriticOpt = "hybrid",
    model: ModelOpt = "embedded",
    base_url: BaseUrlOpt = None,
    samples: SamplesOpt = 1,
    max_tokens: MaxTokensOpt = 1024,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON line per record.")] = False,
    template: TemplateOpt = None,
    store: Annotated[
        Path | None, typer.Option(help="SQLite store for the response cache.")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the store.")] = False,
    concurrency: ConcurrencyOpt = 4,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = 120.0,
    structured: StructuredOpt = False,
) -> None:
    """Critique each record's solution: a verdict per step and the first error, with why."""
    if samples < 1:
        raise ConfigError("--samples must be at least 1")
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if max_tokens < 1:
        raise ConfigError("--max-tokens must be at least 1")
    db = None if no_cache else Store(store or default_store_path())
    engines = Engines(EngineSpec(model=model, base_url=base_url, threads=threads,
                                 timeout=timeout, concurrency=concurrency,
                                 max_tokens=max_tokens, structured=structured), db)
    built = engines.critic(critic, samples=samples, template=template)
    items = list(read_examples(file, need_solution=True))
    examples = [x for x in items if isinstance(x, Example)]
    bad = [x for x in items if isinstance(x, InputError)]
    for e in bad:
        error_line(e)
    try:
        results = asyncio.run(_critique_all(built, examples, concurrency, json_out, engines))
    finally:
        if db is not None:
            db.close()
    failed = [r for r in results if r.error is not None]
    err.print(summary(results, list(engines.built.values())), soft_wrap=True)
    if bad:
        raise typer.Exit(EXIT_INPUT)
    if failed:
        raise typer.Exit(EXIT_MODEL)


async def _critique_all(
    critic: Critic, examples: Sequence[Example], concurrency: int, json_out: bool,
    engines: Engines,
) -> list[Result]:
    sem = asyncio.Semaphore(concurrency)

    async def one(ex: Example) -> Result:
        if ex.solution is None:  # a bare problem (no steps, no solution): nothing to judge
            return Result(ex, None, "no solution to critique: give 'steps' or 'solution'")
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
            await engines.aclose()
    return results


def _emit(r: Result, json_out: bool, console: Console) -> None:
    """Print one result. Never fails on its text: a lone surrogate (not text, which no
    encoding takes) is written as its escape, in JSON as in the table."""
    import re

    from criticlab.store import LINE_BREAKS, json_text

    if json_out:
        # one record a line, even for readers that also end lines at U+2028, U+2029, U+0085
        line = json_text(r.to_dict()).translate(LINE_BREAKS)
        try:
            sys.stdout.write(line + "\n")
        except UnicodeEncodeError:  # stdout is not UTF-8 (nothing was written): ASCII JSON
            sys.stdout.write(json.dumps(r.to_dict()) + "\n")
        sys.stdout.flush()
        return
    if r.error is not None:
        error_line(f"{r.example.problem.id}: {r.error}")
        return
    text = json.dumps(r.to_dict(), ensure_ascii=False)
    if not text.isascii() and re.search("[\ud800-\udfff]", text):
        # show each lone surrogate as its escape, as text (JSON's \\ is one backslash)
        text = re.sub("[\ud800-\udfff]", lambda m: f"\\\\u{ord(m.group()):04x}", text)
        r = Result.from_dict(json.loads(text))
    assert r.critique is not None
    console.print(render_critique(r.example, r.critique))
    console.print()
    console.file.flush()
