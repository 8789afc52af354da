"""``criticlab eval``, ``refine`` and ``select``: build a job's config, run it (locally or on
Ray) with a progress bar, print its metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from criticlab.cli.common import (
    EXIT_MODEL,
    AddressOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    CriticOpt,
    ExecutorOpt,
    LimitOpt,
    MaxTokensOpt,
    ModelOpt,
    OutDir,
    SamplesOpt,
    StructuredOpt,
    TemplateOpt,
    ThreadsOpt,
    TimeoutOpt,
    WorkersOpt,
    err,
    make_executor,
    out,
    report_input_errors,
    run_with_progress,
    slug,
)
from criticlab.cli.tables import eval_progress, metrics_table
from criticlab.registry import CRITICS, uses_model


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
    structured: StructuredOpt = False,
    abstain: Annotated[str, typer.Option(
        help="How a critique that decides nothing (a verifier that checked no claim) counts "
             "in ProcessBench's F1: unknown (a wrong prediction, the official protocol) or "
             "no-error.")] = "unknown",
) -> None:
    """Evaluate a critic on a benchmark: official metrics, resumable, into a run directory."""
    run_on = make_executor(executor, address, workers)
    from criticlab.evaluate import EvalConfig, evaluate

    model = model if uses_model(critic) else "none"
    name = (f"{benchmark}__{critic}__{model}" + (f"@{samples}" if samples > 1 else "")
            + ("__structured" if structured else ""))
    config = EvalConfig(
        benchmark=benchmark, out=out_dir or Path("runs") / slug(name), critic=critic,
        model=model, base_url=base_url, samples=samples, limit=limit, concurrency=concurrency,
        max_tokens=max_tokens, template=template, threads=threads, timeout=timeout,
        structured=structured, abstain=abstain,
    )
    with eval_progress(err) as on_progress:
        run = evaluate(config, progress=on_progress, executor=run_on)
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
    limit: LimitOpt = None,
    max_tokens: MaxTokensOpt = 1024,
    concurrency: ConcurrencyOpt = 4,
    threads: ThreadsOpt = None,
    out_dir: OutDir = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = 2,
    structured: StructuredOpt = False,
) -> None:
    """Critique and refine until the critic accepts, or search (mctsr): accuracy, CL/CS, cost."""
    run_on = make_executor(executor, address, workers)
    from criticlab.engines import EngineSpec
    from criticlab.infer.jobs import RefineConfig, run_refine

    engines = EngineSpec(model=model, actor=actor, base_url=base_url, threads=threads,
                         concurrency=concurrency, max_tokens=max_tokens, structured=structured)
    name = slug(f"refine__{data}__{critic}__{strategy}__{actor or model}"
                + ("__structured" if structured else ""))
    config = RefineConfig(data=data, out=out_dir or Path("runs") / name, critic=critic,
                          strategy=strategy, rounds=rounds, limit=limit, draft=draft,
                          engines=engines, budget=budget, expand=expand)
    run_with_progress(f"refine {data} · {critic} · {strategy}", config.out,
                      lambda tick: run_refine(config, tick, run_on))


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
    limit: LimitOpt = None,
    max_tokens: MaxTokensOpt = 512,
    concurrency: ConcurrencyOpt = 4,
    threads: ThreadsOpt = None,
    out_dir: OutDir = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = 2,
    structured: StructuredOpt = False,
) -> None:
    """Sample N solutions per problem and choose one: accuracy next to majority and pass@N."""
    run_on = make_executor(executor, address, workers)
    from criticlab.engines import EngineSpec
    from criticlab.infer.jobs import SelectConfig, run_select

    engines = EngineSpec(model=model, actor=actor, base_url=base_url, threads=threads,
                         concurrency=concurrency, max_tokens=max_tokens, structured=structured)
    name = slug(f"select__{data}__{method}__{critic or 'none'}__{actor or model}@{n}"
                + ("__structured" if structured else ""))
    config = SelectConfig(data=data, out=out_dir or Path("runs") / name, n=n, method=method,
                          critic=critic, aggregate=aggregate, k=k, limit=limit, engines=engines)
    run_with_progress(f"select {data} · {method} · n={n}", config.out,
                      lambda tick: run_select(config, tick, run_on))
