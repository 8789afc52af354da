"""``criticlab label ...``: make critique data (error injection, Monte Carlo step labels,
filtered teacher critiques) and export it in TRL's formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from criticlab.cli.common import (
    AddressOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    CriticOpt,
    ExecutorOpt,
    LimitOpt,
    MaxTokensOpt,
    OutDir,
    StructuredOpt,
    ThreadsOpt,
    WorkersOpt,
    err,
    make_executor,
    out,
    report_input_errors,
    run_with_progress,
    slug,
)
from criticlab.errors import ConfigError, InputError
from criticlab.jobs import keep_good

label_app = typer.Typer(no_args_is_help=True, help="Make critique data and export it.")

DataArg = Annotated[str, typer.Argument(help="gsm8k[:train], processbench[:SUBSET], or a file.")]


@label_app.command("inject")
def inject_cmd(
    data: DataArg,
    out_file: Annotated[Path, typer.Option("--out", help="Output: .json (array) or .jsonl.")],
    per_problem: Annotated[int, typer.Option(help="Erroneous records per problem.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same records).")] = 0,
    types: Annotated[str | None, typer.Option(
        help="Comma-separated error types (default: all).")] = None,
    limit: LimitOpt = None,
) -> None:
    """Inject known errors into GSM8K reference solutions (ProcessBench-format records)."""
    from criticlab.label.inject import ERROR_TYPES, InjectConfig, inject

    chosen = tuple(t.strip() for t in types.split(",")) if types else tuple(ERROR_TYPES)
    stats = inject(InjectConfig(data=data, out=out_file, per_problem=per_problem, seed=seed,
                                types=chosen, limit=limit))
    table = Table("error type", "attempted", "written", "same answer (discarded)",
                  "not applicable", title=f"{out_file}", title_justify="left")
    for name, t in stats.by_type.items():
        table.add_row(name, str(t.attempted), str(t.written), str(t.same_answer),
                      str(t.not_applicable))
    out.print(table)
    err.print(f"{stats.records} records ({stats.correct} correct, "
              f"{stats.records - stats.correct} with an injected error) from {stats.problems} "
              f"problems ({stats.skipped} skipped) written to {out_file}")
    report_input_errors(stats.input_errors)


@label_app.command("mc")
def mc_cmd(
    data: DataArg,
    actor: Annotated[str, typer.Option(help="Model that rolls out completions.")] = "embedded",
    rollouts: Annotated[int, typer.Option(help="Completions per prefix.")] = 8,
    method: Annotated[str, typer.Option(
        help="per-step (N rollouts of every prefix: hard and soft labels) | binary "
             "(OmegaPRM's binary search for the first error) | anchored (that search "
             "anchored on the solution's own final answer: a wrong one fixes the last step "
             "as bad, a right one needs no rollout; each probe stops at its first success) "
             "| anchored-scan (the same, probing the prefixes in order: per-step's first "
             "error exactly, fewest rollouts where errors come early). The anchored methods "
             "give soft labels only where all N rollouts were drawn.")
    ] = "per-step",
    check_right: Annotated[bool, typer.Option(
        "--check-right", help="anchored, anchored-scan: also search solutions whose final "
                              "answer is right (by default they get no rollout and no "
                              "first error).")] = False,
    temperature: Annotated[float, typer.Option(help="Rollout temperature.")] = 0.8,
    base_url: BaseUrlOpt = None,
    max_tokens: MaxTokensOpt = 512,
    limit: LimitOpt = None,
    concurrency: Annotated[int | None, typer.Option(
        help="Solutions at once (default 1 for in-process models, which keeps llama.cpp's "
             "prefix reuse between consecutive prefixes; 4 for servers).")] = None,
    threads: ThreadsOpt = None,
    seed: Annotated[int, typer.Option(help="Rollout seed.")] = 0,
    out_dir: OutDir = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = 2,
) -> None:
    """Monte Carlo step labels: rollouts from each prefix, checked against the reference."""
    run_on = make_executor(executor, address, workers)
    from criticlab.label.mc import MCConfig, label_mc

    config = MCConfig(data=data, out=out_dir or Path("runs") / slug(
        f"mc__{data}__{actor}__{method}@{rollouts}"), actor=actor, base_url=base_url,
        rollouts=rollouts, method=method, temperature=temperature, max_tokens=max_tokens,
        limit=limit, seed=seed, threads=threads, check_right=check_right,
        concurrency=concurrency or (4 if actor.startswith("openai:") else 1))
    run_with_progress(f"label mc {data} · {method}{' --check-right' if check_right else ''}"
                      f" · {rollouts} rollouts", config.out,
                      lambda tick: label_mc(config, tick, executor=run_on), shown=_flat)


@label_app.command("synth")
def synth_cmd(
    data: DataArg,
    critic: CriticOpt = "processbench",
    model: Annotated[str, typer.Option(help="The teacher's model.")] = "embedded",
    samples: Annotated[int, typer.Option(help="Critiques per solution.")] = 4,
    base_url: BaseUrlOpt = None,
    max_tokens: MaxTokensOpt = 1024,
    limit: LimitOpt = None,
    concurrency: ConcurrencyOpt = 4,
    threads: ThreadsOpt = None,
    out_dir: OutDir = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = 2,
    structured: StructuredOpt = False,
) -> None:
    """Sample teacher critiques of labelled solutions; keep those that agree with the label."""
    run_on = make_executor(executor, address, workers)
    from criticlab.engines import EngineSpec
    from criticlab.label.synthesize import SynthConfig, label_synth

    engines = EngineSpec(model=model, base_url=base_url, threads=threads,
                         concurrency=concurrency, max_tokens=max_tokens, structured=structured)
    name = f"synth__{data}__{critic}__{model}@{samples}" + ("__structured" if structured else "")
    config = SynthConfig(data=data, out=out_dir or Path("runs") / slug(name), critic=critic,
                         samples=samples, limit=limit, engines=engines)
    run_with_progress(f"label synth {data} · {critic} · {model}", config.out,
                      lambda tick: label_synth(config, tick, run_on), note=" (critiques.jsonl)")


@label_app.command("export")
def export_cmd(
    data: Annotated[str, typer.Argument(
        help="Labelled records, or a `label synth` run's critiques.jsonl.")],
    fmt: Annotated[str, typer.Option("--format", help="sft | preference | stepwise | rl.")],
    out_file: Annotated[Path, typer.Option("--out", help="Output .jsonl (a Dataset is saved "
                                                         "next to it, without the suffix).")],
    style: Annotated[str, typer.Option(help="Critique prompt style.")] = "processbench",
    limit: LimitOpt = None,
    no_dataset: Annotated[bool, typer.Option("--no-dataset", help="JSONL only.")] = False,
) -> None:
    """Write TRL rows (SFT, preference, stepwise supervision, RL prompts) as JSONL + Dataset."""
    from criticlab.label.export import rows_for, write_rows

    critiques = None
    bad: list[InputError] = []
    if data.endswith("critiques.jsonl"):
        from criticlab.label.synthesize import read_critiques

        examples, every, kept = read_critiques(Path(data))
        critiques = every if fmt == "preference" else kept
    else:
        from criticlab.data import load_benchmark

        examples = load_benchmark(data, limit=limit, errors=bad, need_solution=True)
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise ConfigError(f"{data}: nothing to export")
    # every format states the gold first error
    examples = keep_good(examples, bad, lambda ex: None if ex.gold is not None else InputError(
        f"{ex.problem.id} has no label to export (give 'label')", path=data, field="label"))
    rows = rows_for(fmt, examples, critiques, style)
    path = write_rows(rows, out_file, dataset=not no_dataset)
    err.print(f"{len(rows)} {fmt} rows written to {path}"
              + ("" if no_dataset else f" and {path.with_suffix('')}/"))
    report_input_errors([str(e) for e in bad])


def _flat(metrics: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in metrics.items() if not isinstance(v, list)}
