"""``criticlab serve``: critiques and critique rewards over HTTP (:mod:`criticlab.serve`)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from criticlab.cli.common import (
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
)
from criticlab.errors import ConfigError
from criticlab.serve.server import HEADER_TIMEOUT_S, MAX_CONNECTIONS


def serve(
    critic: CriticOpt = "hybrid",
    model: ModelOpt = "embedded",
    base_url: BaseUrlOpt = None,
    host: Annotated[str, typer.Option(
        help="Address to listen on; anything but a loopback address needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[str | None, typer.Option(
        envvar="CRITICLAB_TOKEN", show_envvar=True,
        help="Bearer token every endpoint but /health requires.")] = None,
    store: Annotated[Path | None, typer.Option(
        help="SQLite store for model responses and served critiques.")] = None,
    samples: SamplesOpt = 1,
    max_tokens: MaxTokensOpt = 1024,
    template: TemplateOpt = None,
    concurrency: ConcurrencyOpt = 4,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = 120.0,
    request_timeout: Annotated[float, typer.Option(
        help="Seconds per HTTP request (504 after).")] = 600.0,
    max_batch: Annotated[int, typer.Option(help="Records per request (413 above).")] = 64,
    max_body: Annotated[int, typer.Option(
        help="Bytes per request body (413 above).")] = 8 * 1024 * 1024,
    max_inflight: Annotated[int, typer.Option(
        help="Records being critiqued over all requests (429 with Retry-After above).")] = 256,
    max_record: Annotated[int, typer.Option(
        help="Characters of text per record (413 above).")] = 200_000,
    max_record_steps: Annotated[int, typer.Option(
        help="Steps per record (413 above).")] = 2_000,
    max_connections: Annotated[int, typer.Option(
        help="Open connections; past it the one idle longest is closed.")] = MAX_CONNECTIONS,
    header_timeout: Annotated[float, typer.Option(
        help="Seconds a connection may wait before its request's headers arrive.")
    ] = HEADER_TIMEOUT_S,
    reward: Annotated[str, typer.Option(
        help="Reward of /get_reward (OpenRLHF) and /v1/reward's default: verdict, "
             "first_error or score.")] = "verdict",
    structured: StructuredOpt = False,
) -> None:
    """Serve critiques and critique rewards over HTTP (also OpenRLHF's /get_reward)."""
    from criticlab.serve.app import Limits, build_app, check_bind
    from criticlab.serve.server import run

    check_bind(host, token)
    if samples < 1:
        raise ConfigError("--samples must be at least 1")
    if max_tokens < 1:
        raise ConfigError("--max-tokens must be at least 1")
    if not 0 <= port < 65536:
        raise ConfigError("--port must be from 0 to 65535")
    if max_connections < 1 or header_timeout <= 0:
        raise ConfigError("--max-connections and --header-timeout must be positive")
    app = build_app(critic, model, base_url=base_url, threads=threads, timeout=timeout,
                    concurrency=concurrency, max_tokens=max_tokens, structured=structured,
                    samples=samples, template=template,
                    store_path=store or default_store_path(), token=token,
                    limits=Limits(max_batch=max_batch, max_body=max_body,
                                  max_inflight=max_inflight, request_timeout=request_timeout,
                                  max_record=max_record, max_record_steps=max_record_steps),
                    reward=reward)
    err.print(f"serving {critic} on http://{host}:{port} (stop: Ctrl-C or SIGTERM; "
              "requests in flight finish first)", soft_wrap=True)
    if signal.SIGINT in run(app, host, port, max_connections=max_connections,
                            header_timeout=header_timeout):
        raise typer.Exit(130)
