"""The ``criticlab`` command: the Typer app with every command group registered, and
:func:`main`, which turns user errors into one line and exit code 2. Each command builds
objects and calls the library; the command modules own the terminal."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from criticlab.cli import critique as critique_cmds
from criticlab.cli import jobs as job_cmds
from criticlab.cli import serve as serve_cmds
from criticlab.cli.common import EXIT_INPUT, EXIT_MODEL, err, error_line, out
from criticlab.cli.label import label_app
from criticlab.cli.train import train_app
from criticlab.errors import ConfigError, CriticlabError, InputError, ModelError

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="criticlab: judge a solution step by step, find the first wrong step and say why.",
)
app.command()(critique_cmds.critique)
app.command("eval")(job_cmds.eval_cmd)
app.command()(job_cmds.refine)
app.command("select")(job_cmds.select_cmd)
app.command()(serve_cmds.serve)


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
def repair(
    run_dir: Annotated[Path, typer.Argument(help="The run directory (--out of the run).")],
) -> None:
    """Rebuild a run's damaged store: the rows it can still read and the finished items of
    its results.jsonl go into a fresh store (the damaged one is kept aside); then run the
    same command again to resume."""
    import json

    from rich.markup import escape

    from criticlab.rundir import repair_run

    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run directory")
    path = run_dir / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{run_dir} holds no config.json: not a run directory") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the run's config: {e}") from e
    output = None
    if isinstance(config, dict) and config.get("kind") == "eval":
        from criticlab.evaluate import EvalConfig, kept_result
        from criticlab.jobs import key_of

        output = (key_of(config, EvalConfig), "results.jsonl", kept_result)
    done = repair_run(run_dir, output)
    err.print(escape(done.line(run_dir)), soft_wrap=True)


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


app.add_typer(label_app, name="label")
app.add_typer(train_app, name="train")


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
    except OSError as e:  # the file system said no where no check caught it first
        logging.getLogger("criticlab").debug("unexpected OSError", exc_info=True)
        where = f"{e.filename}: " if e.filename else ""
        error_line(f"{where}{e.strerror or e}")
        sys.exit(EXIT_INPUT)
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
