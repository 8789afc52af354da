"""Run a critic over a benchmark into a run directory, resumably.

A run directory holds one run: ``config.json`` (the resolved config), ``store.sqlite`` (every
model response and every finished item), and, at the end, ``results.jsonl`` and
``metrics.json``. Running the same config into the same directory again resumes: finished
items are read back, and requests whose responses were stored before a crash are answered
from the store, so no model call is repeated and no result is written twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from criticlab.critics.base import Critic
from criticlab.errors import ConfigError, InputError
from criticlab.jobs import input_errors, keep_good, map_resumable, open_run, write_json, write_jsonl
from criticlab.metrics import compute_metrics, prediction
from criticlab.store import CachedModel, Store
from criticlab.types import Example, Result, Usage

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class EvalConfig:
    KIND: ClassVar[str] = "eval"
    VARIANTS: ClassVar[tuple[str, ...]] = ()
    # what decides the results; limit, concurrency, threads and timeout may change between a
    # run and its resumption (see criticlab.jobs.open_run)
    IDENTITY: ClassVar[tuple[str, ...]] = (
        "benchmark", "critic", "model", "base_url", "samples", "max_tokens", "template",
        "template_sha256")

    benchmark: str
    out: Path
    critic: str = "processbench"
    model: str = "embedded"
    base_url: str | None = None
    samples: int = 1
    limit: int | None = None
    concurrency: int = 4
    max_tokens: int = 1024
    template: str | None = None
    threads: int | None = None
    timeout: float = 120.0

    def __post_init__(self) -> None:
        for name in ("samples", "concurrency", "max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        if self.template is not None:
            try:
                text = Path(self.template).read_bytes()
            except OSError as e:
                raise ConfigError(f"{self.template}: cannot read the template: {e}") from e
            d["template_sha256"] = hashlib.sha256(text).hexdigest()
        return d


@dataclass
class EvalProgress:
    """What a progress display needs; passed to the callback after every item."""

    total: int
    done: int = 0
    resumed: int = 0
    unparsed: int = 0
    errors: int = 0
    usage: Usage = field(default_factory=Usage)
    started: float = field(default_factory=time.monotonic)


@dataclass
class EvalRun:
    config: EvalConfig
    results: list[Result]
    metrics: dict[str, Any]


def evaluate(
    config: EvalConfig,
    *,
    examples: Sequence[Example] | None = None,
    critic: Critic | None = None,
    progress: Callable[[EvalProgress], None] | None = None,
) -> EvalRun:
    """Critique every example (the config's benchmark unless ``examples`` is given) into
    ``config.out`` and compute the metrics. ``critic`` overrides the one the config names.

    An engine error on one item is recorded in its ``Result.error`` and not stored, so a rerun
    tries that item again. Interrupted runs (Ctrl-C) still write what they finished.
    """
    if critic is None:
        from criticlab.registry import check_names

        check_names(config.critic, config.model, template=config.template)
    items, key, errors = prepare_run(config, examples, critic)
    with Store(config.out / "store.sqlite") as store:
        return asyncio.run(_evaluate(config, items, key, critic, store, progress, errors))


def prepare_run(config: EvalConfig, examples: Sequence[Example] | None,
                critic: Critic | None = None) -> tuple[list[Example], str, list[InputError]]:
    """The run's items (the config's benchmark unless given, up to ``limit``, ids unique),
    the store's key for them, and the records skipped as bad (reported with the results),
    after checking that ``config.out`` may hold this run and recording its config there
    (:func:`criticlab.jobs.open_run`). A critic object given in place of the config's name
    is part of the key."""
    errors: list[InputError] = []
    if examples is None:
        from criticlab.data import load_benchmark

        examples = load_benchmark(config.benchmark, limit=config.limit, errors=errors,
                                  need_solution=True)
    elif config.limit is not None:
        examples = list(examples)[: config.limit]
    examples = keep_good(examples, errors, lambda ex: None if ex.solution is not None else (
        InputError(f"{ex.problem.id} has no solution to critique (give 'steps' or 'solution')",
                   path=config.benchmark, field="steps")))
    ids = [ex.problem.id for ex in examples]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"{config.benchmark}: the item id {dup!r} occurs more than once")
    extra = None if critic is None else {"critic_object": getattr(critic, "name", repr(critic))}
    return examples, open_run(config, extra), errors


class Collector:
    """Gathers an eval run's results as an executor reports them (its ``on_result``), keeps
    the progress state, and writes the run's files at the end; shared by the local executor
    and the Ray one, so both finish a run the same way."""

    def __init__(self, config: EvalConfig, examples: list[Example],
                 progress: Callable[[EvalProgress], None] | None,
                 errors: Sequence[InputError] = ()) -> None:
        self.config = config
        self.examples = examples
        self.errors = errors
        self.progress = progress
        self.started = time.monotonic()
        self.state = EvalProgress(total=len(examples))
        self.by_id = {ex.problem.id: ex for ex in examples}
        self.results: dict[str, Result] = {}

    def on_result(self, key: str, row: dict[str, Any] | None, error: str | None,
                  resumed: bool) -> None:
        r = Result.from_dict(row) if row is not None else Result(self.by_id[key], None, error)
        self.results[key] = r
        self.state.done += 1
        self.state.resumed += resumed
        _count(self.state, r)
        if self.progress and not resumed:
            self.progress(self.state)

    def finish(self, complete: bool, extra: dict[str, Any]) -> EvalRun:
        """Write ``results.jsonl`` (in the benchmark's order) and ``metrics.json`` with what
        has been collected, ``extra`` included (this executor's own figures)."""
        ordered = [self.results[ex.problem.id] for ex in self.examples
                   if ex.problem.id in self.results]
        metrics = compute_metrics(ordered)
        metrics.update({
            "benchmark": self.config.benchmark, "critic": self.config.critic,
            "model": self.config.model, "complete": complete,
            "elapsed_s": time.monotonic() - self.started, **extra,
            **input_errors(self.errors),
        })
        write_jsonl(self.config.out / "results.jsonl", (r.to_dict() for r in ordered))
        write_json(self.config.out / "metrics.json", metrics)
        return EvalRun(self.config, ordered, metrics)


async def _evaluate(
    config: EvalConfig,
    examples: list[Example],
    key: str,
    critic: Critic | None,
    store: Store,
    progress: Callable[[EvalProgress], None] | None,
    errors: Sequence[InputError] = (),
) -> EvalRun:
    collect = Collector(config, examples, progress, errors)
    models: list[CachedModel] = []
    built: list[Critic] = [critic] if critic is not None else []

    async def work(ex: Example) -> dict[str, Any]:
        if not built:  # build the engine only when an item needs it
            built.append(_build_critic(config, store, models))
        assert ex.solution is not None, f"{ex.problem.id} has no solution to critique"
        return Result(ex, await built[0].critique(ex.problem, ex.solution)).to_dict()

    complete = False
    try:
        done, _ = await map_resumable(
            store, key, [(ex.problem.id, ex) for ex in examples], work,
            concurrency=config.concurrency, on_result=collect.on_result)
        complete = len(done) == len(examples)
    finally:
        for m in models:
            await m.aclose()
        run = collect.finish(complete, {"this_run": {
            "engine_calls": sum(m.stats.calls for m in models),
            "store_hits": sum(m.stats.hits for m in models),
            "resumed_items": collect.state.resumed,
        }})
    return run


def _build_critic(config: EvalConfig, store: Store, models: list[CachedModel]) -> Critic:
    from criticlab.registry import make_critic, make_model

    def lm() -> CachedModel:
        if not models:
            models.append(CachedModel(
                make_model(config.model, base_url=config.base_url, threads=config.threads,
                           timeout=config.timeout, concurrency=config.concurrency),
                store,
            ))
        return models[0]

    return make_critic(config.critic, lm, samples=config.samples, template=config.template,
                       max_tokens=config.max_tokens)


def _count(state: EvalProgress, r: Result) -> None:
    if r.error is not None:
        state.errors += 1
        return
    if r.critique is not None:
        state.usage = state.usage + r.critique.usage
        if prediction(r) is None and not r.critique.parsed:
            state.unparsed += 1
