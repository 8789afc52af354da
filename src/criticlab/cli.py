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
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from criticlab.benchmarks.jsonl import read_examples
from criticlab.cli_common import (
    EXIT_INPUT,
    EXIT_MODEL,
    AddressOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    CriticOpt,
    ExecutorOpt,
    MaxTokensOpt,
    ModelOpt,
    SamplesOpt,
    TemplateOpt,
    ThreadsOpt,
    Tick,
    TimeoutOpt,
    WorkersOpt,
    check_executor,
    default_store_path,
    err,
    error_line,
    out,
    report_input_errors,
    run_job,
    slug,
)
from criticlab.critics.base import Critic
from criticlab.errors import ConfigError, CriticlabError, InputError, ModelError
from criticlab.models.base import LanguageModel
from criticlab.registry import CRITICS, make_critic, make_model, uses_model
from criticlab.store import CachedModel, Store
from criticlab.tables import eval_progress, metrics_table, render_critique, summary
from criticlab.types import Example, Result

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="criticlab: judge a solution step by step, find the first wrong step and say why.",
)
@app.command()
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
    items = list(read_examples(file, need_solution=True))
    examples = [x for x in items if isinstance(x, Example)]
    bad = [x for x in items if isinstance(x, InputError)]
    for e in bad:
        error_line(e)
    try:
        results = asyncio.run(_critique_all(built, examples, concurrency, json_out, cached))
    finally:
        if db is not None:
            db.close()
    failed = [r for r in results if r.error is not None]
    err.print(summary(results, cached), soft_wrap=True)
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
            for m in models:
                await m.aclose()
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


@app.command("eval")
def eval_cmd(
    benchmark: Annotated[str, typer.Argument(
        help="processbench[:SUBSET], prmbench, gsm8k, or a file of records.")],
    critic: CriticOpt = "processbench",
    model: ModelOpt = "embedded",
    base_url: BaseUrlOpt = None,
    samples: SamplesOpt = 1,
    limit: Annotated[int | None, typer.Option(help="Only the first N items.")] = None,
    max_tokens: MaxTokensOpt = 1024,
    template: TemplateOpt = None,
    concurrency: ConcurrencyOpt = 4,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = 120.0,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Run directory (default runs/BENCH__CRITIC__MODEL); rerun to resume.")
    ] = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = 2,
) -> None:
    """Evaluate a critic on a benchmark: official metrics, resumable, into a run directory."""
    check_executor(executor)
    from criticlab.evaluate import EvalConfig, evaluate

    model = model if uses_model(critic) else "none"
    name = f"{benchmark}__{critic}__{model}" + (f"@{samples}" if samples > 1 else "")
    config = EvalConfig(
        benchmark=benchmark, out=out_dir or Path("runs") / slug(name), critic=critic,
        model=model, base_url=base_url, samples=samples, limit=limit, concurrency=concurrency,
        max_tokens=max_tokens, template=template, threads=threads, timeout=timeout,
    )
    with eval_progress(err) as on_progress:
        if executor == "ray":
            from criticlab.scale import evaluate_ray

            run = evaluate_ray(config, address=address, workers=workers, progress=on_progress)
        else:
            run = evaluate(config, progress=on_progress)
    m = run.metrics
    bad = m.pop("input_errors", [])
    out.print(metrics_table(m, title=f"{benchmark} · {critic} · {model}"))
    this = m["this_run"]
    err.print(
        f"{m['n']} items ({this['resumed_items']} resumed) in {m['elapsed_s']:.1f} s; "
        f"model calls: {this['engine_calls']} ({this['store_hits']} answered from the store); "
        f"results in {config.out}/", soft_wrap=True,
    )
    if m["errors"]:
        raise typer.Exit(EXIT_MODEL)
    report_input_errors(bad)


@app.command()
def refine(
    data: Annotated[str, typer.Argument(help="Problems with reference answers (gsm8k, a file).")],
    critic: CriticOpt = "arithmetic",
    strategy: Annotated[str, typer.Option(
        help="global | local | best | repair, or a tree search: mctsr | mcnest.")] = "global",
    rounds: Annotated[int, typer.Option(help="Refinements at most.")] = 2,
    budget: Annotated[int, typer.Option(
        help="mctsr/mcnest: model calls per problem (nodes when no model is used).")] = 8,
    expand: Annotated[str, typer.Option(
        help="mctsr/mcnest: refine a node by global | local | repair.")] = "global",
    actor: Annotated[str | None, typer.Option(
        help="Model that writes and refines solutions (default: --model).")] = None,
    draft: Annotated[str, typer.Option(
        help="given (the data's solutions), solve (the actor writes them), auto.")] = "auto",
    model: ModelOpt = "embedded",
    base_url: BaseUrlOpt = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N problems.")] = None,
    max_tokens: MaxTokensOpt = 1024,
    concurrency: ConcurrencyOpt = 4,
    threads: ThreadsOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run directory.")] = None,
) -> None:
    """Critique and refine until the critic accepts, or search (mctsr): accuracy, CL/CS, cost."""
    from criticlab.infer.jobs import EngineSpec, RefineConfig, run_refine

    engines = EngineSpec(model=model, actor=actor, base_url=base_url, threads=threads,
                         concurrency=concurrency, max_tokens=max_tokens)
    name = slug(f"refine__{data}__{critic}__{strategy}__{actor or model}")
    config = RefineConfig(data=data, out=out_dir or Path("runs") / name, critic=critic,
                          strategy=strategy, rounds=rounds, limit=limit, draft=draft,
                          engines=engines, budget=budget, expand=expand)
    run_job(f"refine {data} · {critic} · {strategy}", config.out,
            lambda tick: run_refine(config, tick))


@app.command("select")
def select_cmd(
    data: Annotated[str, typer.Argument(help="Problems with reference answers (gsm8k, a file).")],
    n: Annotated[int, typer.Option(help="Solutions sampled per problem.")] = 8,
    method: Annotated[str, typer.Option(
        help="majority | best | filtered | weighted | sampled.")] = "majority",
    critic: Annotated[str | None, typer.Option(
        help=f"Critic for every method but majority: {', '.join(CRITICS)}.")] = None,
    aggregate: Annotated[str, typer.Option(help="Step scores for best: min|last|product.")] = "min",
    k: Annotated[int, typer.Option(help="Critiques per solution for --method sampled.")] = 4,
    actor: Annotated[str | None, typer.Option(help="Model that writes solutions.")] = None,
    model: ModelOpt = "embedded",
    base_url: BaseUrlOpt = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N problems.")] = None,
    max_tokens: MaxTokensOpt = 512,
    concurrency: ConcurrencyOpt = 4,
    threads: ThreadsOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run directory.")] = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = 2,
) -> None:
    """Sample N solutions per problem and choose one: accuracy next to majority and pass@N."""
    check_executor(executor)
    from criticlab.infer.jobs import EngineSpec, SelectConfig, run_select

    engines = EngineSpec(model=model, actor=actor, base_url=base_url, threads=threads,
                         concurrency=concurrency, max_tokens=max_tokens)
    name = slug(f"select__{data}__{method}__{critic or 'none'}__{actor or model}@{n}")
    config = SelectConfig(data=data, out=out_dir or Path("runs") / name, n=n, method=method,
                          critic=critic, aggregate=aggregate, k=k, limit=limit, engines=engines)
    def job(tick: Tick) -> dict[str, Any]:
        if executor == "ray":
            from criticlab.scale import select_ray

            return select_ray(config, tick, address=address, workers=workers)
        return run_select(config, tick)

    run_job(f"select {data} · {method} · n={n}", config.out, job)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="One or more run directories.")],
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="HTML file (default RUN_DIR/report.html, or report.html for several runs).")
    ] = None,
) -> None:
    """One self-contained HTML report (tables, charts, items) of eval, refine or select runs."""
    from criticlab.report import write_report
    from criticlab.report.published import PUBLISHED_PROCESSBENCH

    target = out_file or (runs[0] / "report.html" if len(runs) == 1 else Path("report.html"))
    path = write_report(runs, target, published=PUBLISHED_PROCESSBENCH)
    err.print(f"report written to {path}")


@app.command()
def models() -> None:
    """List the model specs (every kind --model accepts) and whether the embedded model is
    installed."""
    from rich.markup import escape

    from criticlab.models.llamacpp import embedded_model_path
    from criticlab.models.spec import MODEL_KINDS

    try:
        where = str(embedded_model_path())
    except ConfigError as e:
        where = str(e)
    table = Table("spec", "what")
    for k in MODEL_KINDS.values():  # brackets are text, not rich markup ('criticlab[hf]')
        what = f"{k.what}: {where}" if k.kind == "embedded" else k.what
        table.add_row(escape(k.usage), escape(what))
    out.print(table)


@app.command()
def doctor(
    base_url: Annotated[str | None, typer.Option(
        help="Also check an OpenAI-compatible server: reachable, models listed.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    probe: Annotated[bool, typer.Option(
        help="Generate a few tokens with the embedded model in a child process.")] = True,
) -> None:
    """Whether this machine can run criticlab, and what it will use (exit 1 if it cannot)."""
    from rich.markup import escape

    from criticlab.doctor import FAIL, MISSING, OK, WARN, as_json, failed, run_checks

    with err.status("checking (the engine probe runs in a child process)"):
        checks = run_checks(base_url=base_url, probe=probe)
    if json_out:
        typer.echo(as_json(checks))
    else:
        marks = {OK: "[green]ok[/green]", FAIL: "[red]FAIL[/red]", WARN: "[yellow]warn[/yellow]",
                 MISSING: "[dim]missing[/dim]"}
        table = Table("component", "status", "what was found", "fix", title="criticlab doctor",
                      title_justify="left")
        for c in checks:
            table.add_row(c.name, marks.get(c.status, f"[dim]{c.status}[/dim]"),
                          escape(c.detail), escape(c.fix))
        out.print(table)
    if failed(checks):
        if not json_out:
            err.print("[red]criticlab cannot run its default model here:[/red] see the FAIL rows")
        raise typer.Exit(1)


def _register_subcommands() -> None:
    from criticlab.cli_label import label_app
    from criticlab.train.cli import train_app

    app.add_typer(label_app, name="label")
    app.add_typer(train_app, name="train")


_register_subcommands()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2; a native crash
    (in llama.cpp, torch, ...) prints where it happened instead of a bare segfault."""
    from criticlab import crash

    crash.install()
    logging.basicConfig(level=os.environ.get("CRITICLAB_LOG", "WARNING").upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    run: Callable[..., object] = app
    try:
        rc = run(args=list(argv) if argv is not None else None, standalone_mode=False)
    except (InputError, ConfigError) as e:
        error_line(e)
        sys.exit(EXIT_INPUT)
    except ModelError as e:
        error_line(e)
        sys.exit(EXIT_MODEL)
    except CriticlabError as e:
        error_line(e)
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
    if rc == 130:  # typer turns Ctrl-C into exit code 130
        err.print("interrupted: every finished result and response is in the store; "
                  "run the same command again to resume")
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
