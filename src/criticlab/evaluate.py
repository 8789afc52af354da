"""Run a critic over a benchmark into a run directory, resumably.

A run directory holds one run: ``config.json`` (the resolved config), ``store.sqlite`` (every
model response and every finished item), and, at the end, ``results.jsonl`` and
``metrics.json``. Running the same config into the same directory again resumes: finished
items are read back, and requests whose responses were stored before a crash are answered
from the store, so no model call is repeated and no result is written twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from criticlab.critics.base import Critic
from criticlab.engines import Engines, EngineSpec
from criticlab.errors import ConfigError, InputError
from criticlab.jobs import Executor, Job, Ticker, Work, keep_good, run_job, write_jsonl
from criticlab.metrics import ABSTAIN, compute_metrics, critique_prediction
from criticlab.types import Example, Result, Usage


@dataclass(frozen=True)
class EvalConfig:
    KIND: ClassVar[str] = "eval"
    VARIANTS: ClassVar[tuple[str, ...]] = ()
    # what decides the results; limit, concurrency, threads and timeout may change between a
    # run and its resumption (see criticlab.jobs.open_run)
    IDENTITY: ClassVar[tuple[str, ...]] = (
        "benchmark", "critic", "model", "base_url", "samples", "max_tokens", "template",
        "template_sha256", "structured")

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
    structured: bool = False
    """LM critics reply in their JSON schema (decoding constrained by the engine)."""
    abstain: str = "unknown"
    """How an undecided critique counts in ProcessBench's F1 (:data:`criticlab.metrics.
    ABSTAIN`); it changes the metrics only, so a finished run may be re-scored with another."""

    def __post_init__(self) -> None:
        if self.abstain not in ABSTAIN:
            raise ConfigError(f"--abstain must be one of: {', '.join(ABSTAIN)}")
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
    executor: Executor | None = None,
) -> EvalRun:
    """Critique every example (the config's benchmark unless ``examples`` is given) into
    ``config.out`` and compute the metrics. ``critic`` overrides the one the config names
    (local executor only). ``executor``: :class:`~criticlab.jobs.LocalExecutor` (default) or
    :class:`criticlab.scale.RayExecutor`, which adds its own figures to ``metrics.json``.

    An engine error on one item is recorded in its ``Result.error`` and not stored, so a rerun
    tries that item again. Interrupted runs (Ctrl-C) still write what they finished.
    """
    job = EvalJob(config, examples, critic)
    metrics = run_job(job, executor, progress)
    return EvalRun(config, job.results, metrics)


class EvalJob(Job):
    """The eval job: one critique per example, the metrics of :mod:`criticlab.metrics`."""

    KEPT: ClassVar[str | None] = "results.jsonl"

    @staticmethod
    def kept_row(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """A line of ``results.jsonl`` with a critique is the row stored for its item (read
        as it is: :func:`kept_result` also checks that it is a whole result)."""
        if record.get("error") is not None or not isinstance(record.get("critique"), dict):
            return None
        item = record["example"]["problem"]["id"]
        return (item, dict(record)) if isinstance(item, str) else None

    def __init__(self, config: EvalConfig, examples: Sequence[Example] | None = None,
                 critic: Critic | None = None) -> None:
        self.config = config
        self.engines = EngineSpec(model=config.model, base_url=config.base_url,
                                  threads=config.threads, timeout=config.timeout,
                                  concurrency=config.concurrency,
                                  max_tokens=config.max_tokens, structured=config.structured)
        self.examples = None if examples is None else list(examples)
        self.critic = critic
        self.results: list[Result] = []

    @property
    def source(self) -> str:
        return self.config.benchmark

    def __getstate__(self) -> dict[str, Any]:  # what a Ray worker needs: no items, no objects
        return {**self.__dict__, "examples": None, "results": []}

    def check(self) -> None:
        if self.critic is None:
            from criticlab.registry import check_names

            c = self.config
            check_names(c.critic, c.model, template=c.template, structured=c.structured)

    def local_only(self) -> str | None:
        return "a critic object was given in place of a name" if self.critic else None

    def key_extra(self) -> Mapping[str, Any] | None:
        c = self.critic
        return None if c is None else {"critic_object": getattr(c, "name", repr(c))}

    def load(self, errors: list[InputError]) -> list[Example]:
        """The config's benchmark unless examples were given, up to ``limit``; records with
        no solution are refused."""
        config = self.config
        if self.examples is None:
            from criticlab.data import load_benchmark

            examples = load_benchmark(config.benchmark, limit=config.limit, errors=errors,
                                      need_solution=True)
        else:
            examples = self.examples[: config.limit]
        return keep_good(examples, errors, lambda ex: None if ex.solution is not None else (
            InputError(f"{ex.problem.id} has no solution to critique (give 'steps' or "
                       "'solution')", path=config.benchmark, field="steps")))

    def work(self, engines: Engines) -> Work:
        c = self.config
        critic = self.critic or engines.critic(c.critic, samples=c.samples, template=c.template)

        async def run(ex: Example) -> dict[str, Any]:
            assert ex.solution is not None, f"{ex.problem.id} has no solution to critique"
            return Result(ex, await critic.critique(ex.problem, ex.solution)).to_dict()

        return run

    def tracker(self, items: Sequence[Example],
                progress: Callable[..., None] | None) -> Ticker:
        return EvalTicker(items, progress)

    def finish(self, items: Sequence[Example], done: Mapping[str, dict[str, Any]],
               failed: Mapping[str, str]) -> dict[str, Any]:
        """Write ``results.jsonl`` (in the benchmark's order); the metrics of the results."""
        self.results = [Result.from_dict(done[ex.problem.id]) if ex.problem.id in done
                        else Result(ex, None, failed[ex.problem.id])
                        for ex in items if ex.problem.id in done or ex.problem.id in failed]
        metrics = compute_metrics(self.results, self.config.abstain)
        metrics.update({"benchmark": self.config.benchmark, "critic": self.config.critic,
                        "model": self.config.model})
        write_jsonl(self.config.out / "results.jsonl", (r.to_dict() for r in self.results))
        return metrics


def kept_result(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """:meth:`EvalJob.kept_row` of a record that is a whole result (what ``criticlab repair``
    puts back into a store): its row as the job stores it."""
    kept = EvalJob.kept_row(record)
    return None if kept is None else (kept[0], Result.from_dict(record).to_dict())


class EvalTicker(Ticker):
    """Keeps an :class:`EvalProgress` (tokens, unparsed critiques, errors) and passes it to
    ``progress`` after every item computed in this run."""

    def __init__(self, items: Sequence[Example],
                 progress: Callable[[EvalProgress], None] | None) -> None:
        super().__init__(len(items))
        self.by_id = {ex.problem.id: ex for ex in items}
        self.state = EvalProgress(total=len(items))
        self.on_progress = progress

    def __call__(self, key: str, row: object, error: str | None, resumed: bool) -> None:
        super().__call__(key, row, error, resumed)
        s = self.state
        s.done, s.resumed = self.done, self.resumed
        if error is not None or not isinstance(row, dict):
            s.errors += 1
        else:
            c = Result.from_dict(row).critique
            if c is not None:
                s.usage = s.usage + c.usage
                if critique_prediction(c) is None and not c.parsed:
                    s.unparsed += 1
        if self.on_progress and not resumed:
            self.on_progress(s)
