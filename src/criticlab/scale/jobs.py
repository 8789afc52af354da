"""``evaluate``, ``label_mc`` and ``select`` on Ray: the same run directory, files and metrics as
the local runners (:func:`criticlab.evaluate.evaluate`, :func:`criticlab.label.mc.label_mc`,
:func:`criticlab.infer.jobs.run_select`),
with the items spread over Ray workers by :func:`criticlab.scale.ray.map_ray`.

A run may switch executors between a crash and its resumption: both read back the same
store. Each worker builds its own model from the config's names (``embedded``,
``llamacpp:PATH``, ``openai:MODEL`` with ``base_url``, or ``vllm:MODEL``, an offline vLLM
engine on the worker's GPUs).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from criticlab.critics.base import Critic
from criticlab.errors import ConfigError
from criticlab.evaluate import (
    RUN,
    Collector,
    EvalConfig,
    EvalProgress,
    EvalRun,
    prepare_run,
)
from criticlab.infer.jobs import SelectConfig, finish_select, load_problems, select_work
from criticlab.jobs import Engines, in_run_dir, write_json, write_jsonl
from criticlab.label.mc import MCConfig, _load, label_example, summarize
from criticlab.models.base import LanguageModel
from criticlab.scale.ray import OnResult, RayStats, map_ray
from criticlab.scale.worker import Work
from criticlab.store import CachedModel, Store
from criticlab.types import Example, Result

VLLM_PREFIX = "vllm:"


# -- models ----------------------------------------------------------------------------------
def make_model(spec: str, *, base_url: str | None = None, threads: int | None = None,
               timeout: float = 120.0, concurrency: int = 8,
               tensor_parallel_size: int = 1) -> LanguageModel:
    """:func:`criticlab.registry.make_model`, plus ``vllm:MODEL`` (an offline vLLM engine
    over ``tensor_parallel_size`` GPUs of this worker)."""
    if spec.startswith(VLLM_PREFIX) and spec[len(VLLM_PREFIX):]:
        from criticlab.models.vllm import VLLMModel

        return VLLMModel(spec[len(VLLM_PREFIX):], tensor_parallel_size=tensor_parallel_size)
    from criticlab.registry import make_model as registry_model

    return registry_model(spec, base_url=base_url, threads=threads, timeout=timeout,
                          concurrency=concurrency)


def model_name(spec: str) -> str:
    """The name a model spec's engine will have (its ``name``, part of every cache key),
    without loading it."""
    kind, _, arg = spec.partition(":")
    if kind == "embedded" and not arg:
        from criticlab.models.llamacpp import EMBEDDED_FILE

        return f"embedded:{EMBEDDED_FILE}"
    if kind == "llamacpp" and arg:
        return f"llamacpp:{Path(arg).name}"
    if kind in ("openai", "vllm") and arg:
        return spec
    from criticlab.registry import check_model_spec

    check_model_spec(spec)
    raise ConfigError(f"unknown model {spec!r}")  # pragma: no cover (check_model_spec raised)


def check_model(spec: str) -> None:
    if not spec.startswith(VLLM_PREFIX):
        from criticlab.registry import check_model_spec

        check_model_spec(spec)


def gpus_for(spec: str, gpus_per_worker: float | None) -> float:
    """A vLLM worker asks Ray for one GPU unless told otherwise; other engines for none."""
    if gpus_per_worker is not None:
        return gpus_per_worker
    return 1.0 if spec.startswith(VLLM_PREFIX) else 0.0


# -- eval ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CritiqueSpec:
    """Builds, inside a worker, the critic that ``config`` names, over the worker's store."""

    config: EvalConfig

    def __call__(self, store: Store) -> Work:
        c = self.config
        models: list[CachedModel] = []

        def lm() -> CachedModel:
            if not models:
                models.append(CachedModel(make_model(
                    c.model, base_url=c.base_url, threads=c.threads, timeout=c.timeout,
                    concurrency=c.concurrency), store))
            return models[0]

        from criticlab.registry import make_critic

        critic: Critic = make_critic(c.critic, lm, samples=c.samples, template=c.template,
                                     max_tokens=c.max_tokens)

        async def run(ex: Example) -> dict[str, Any]:
            assert ex.solution is not None, f"{ex.problem.id} has no solution to critique"
            return Result(ex, await critic.critique(ex.problem, ex.solution)).to_dict()

        return Work(run, models)


def evaluate_ray(
    config: EvalConfig,
    *,
    address: str | None = None,
    workers: int = 2,
    progress: Callable[[EvalProgress], None] | None = None,
    examples: Sequence[Example] | None = None,
    gpus_per_worker: float | None = None,
) -> EvalRun:
    """:func:`criticlab.evaluate.evaluate` with the items critiqued by ``workers`` Ray
    workers (``config.concurrency`` items in flight each) on the cluster at ``address``
    (``None``: a local one). Same run directory, files and metrics; ``metrics["this_run"]``
    adds the workers' restarts. Critics must be named (no critic object: it is built in
    each worker)."""
    from criticlab.registry import check_names, uses_model

    # the registry does not know vllm:MODEL; check that one here, and the rest there
    if uses_model(config.critic):
        check_model(config.model)
    check_names(config.critic, "embedded" if config.model.startswith(VLLM_PREFIX)
                else config.model, template=config.template)
    items = prepare_run(config, examples)
    with Store(config.out / "store.sqlite") as store:
        return asyncio.run(_evaluate(config, items, store, progress, address,
                                     workers, gpus_for(config.model, gpus_per_worker)))


async def _evaluate(config: EvalConfig, examples: list[Example], store: Store,
                    progress: Callable[[EvalProgress], None] | None, address: str | None,
                    workers: int, gpus: float) -> EvalRun:
    collect = Collector(config, examples, progress)
    stats = RayStats()
    complete = False
    try:
        done, _ = await map_ray(
            store, RUN, [(ex.problem.id, ex) for ex in examples], CritiqueSpec(config),
            address=address, workers=workers, on_result=collect.on_result,
            inflight=config.concurrency, num_gpus=gpus, stats=stats)
        complete = len(done) == len(examples)
    finally:
        run = collect.finish(complete, {
            "executor": "ray", "workers": workers,
            "this_run": {"engine_calls": stats.engine_calls, "store_hits": stats.store_hits,
                         "resumed_items": collect.state.resumed,
                         "worker_restarts": stats.restarts, "resent_items": stats.resent},
        })
    return run


# -- label mc --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RolloutSpec:
    """Builds, inside a worker, the actor model that ``config`` names, over the worker's
    store, and labels one example with it (:func:`criticlab.label.mc.label_example`)."""

    config: MCConfig

    def __call__(self, store: Store) -> Work:
        c = self.config
        actor = CachedModel(make_model(c.actor, base_url=c.base_url, threads=c.threads,
                                       concurrency=c.concurrency), store)
        gen = c.generate_config()

        async def run(ex: Example) -> dict[str, Any]:
            return await label_example(actor, ex, c.method, c.rollouts, gen)

        return Work(run, [actor])


def label_mc_ray(
    config: MCConfig,
    progress: Callable[[int, int], None] | None = None,
    *,
    address: str | None = None,
    workers: int = 2,
    gpus_per_worker: float | None = None,
) -> dict[str, Any]:
    """:func:`criticlab.label.mc.label_mc` with the solutions labelled by ``workers`` Ray
    workers (``config.concurrency`` solutions in flight each; 1 keeps an in-process engine's
    prefix reuse between consecutive prefixes). Same files and metrics; resumable across
    executors."""
    check_model(config.actor)
    examples = _load(config)
    config.out.mkdir(parents=True, exist_ok=True)
    write_json(config.out / "config.json",
               {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()})
    started = time.monotonic()
    with Store(config.out / "store.sqlite") as store:
        metrics = asyncio.run(_label(config, examples, store, progress, address, workers,
                                     gpus_for(config.actor, gpus_per_worker)))
    metrics["elapsed_s"] = time.monotonic() - started
    write_json(config.out / "metrics.json", metrics)
    return metrics


async def _label(config: MCConfig, examples: Sequence[Example], store: Store,
                 progress: Callable[[int, int], None] | None, address: str | None,
                 workers: int, gpus: float) -> dict[str, Any]:
    name = model_name(config.actor)
    stats = RayStats()
    done, errors = await map_ray(
        store, config.run_name(name), [(ex.problem.id, ex) for ex in examples],
        RolloutSpec(config), address=address, workers=workers,
        on_result=_ticker(progress, len(examples)),
        inflight=config.concurrency, num_gpus=gpus, stats=stats)
    rows = [done[ex.problem.id] for ex in examples if ex.problem.id in done]
    write_jsonl(config.out / "labels.jsonl", rows)
    metrics = summarize(rows)
    metrics.update({"method": config.method, "actor": name, "rollouts": config.rollouts,
                    "errors": len(errors), "complete": len(done) == len(examples),
                    "executor": "ray", "workers": workers, "this_run": _this_run(stats)})
    return metrics


# -- select ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SelectSpec:
    """Builds, inside a worker, the actor and the critic that ``config`` names, over the
    worker's store, and runs the select job's work on one problem."""

    config: SelectConfig

    def __call__(self, store: Store) -> Work:
        engines = Engines(self.config.engines, store)
        return Work(select_work(self.config, engines), engines.built.values())


def select_ray(
    config: SelectConfig,
    progress: Callable[[int, int], None] | None = None,
    *,
    address: str | None = None,
    workers: int = 2,
    gpus_per_worker: float | None = None,
) -> dict[str, Any]:
    """:func:`criticlab.infer.jobs.run_select` with the problems shared out to ``workers`` Ray
    workers (``config.engines.concurrency`` problems in flight each). Same files and metrics;
    resumable across executors."""
    from criticlab.registry import check_names

    e = config.engines
    for spec in {e.model, e.actor or e.model}:
        check_model(spec)
    if config.critic:
        check_names(config.critic, "embedded" if e.model.startswith(VLLM_PREFIX) else e.model)
    examples = load_problems(config.data, config.limit)
    gpus = gpus_for(e.actor or e.model, gpus_per_worker)

    async def main(store: Store) -> dict[str, Any]:
        stats = RayStats()
        done, errors = await map_ray(
            store, "select", [(ex.problem.id, ex) for ex in examples], SelectSpec(config),
            address=address, workers=workers, on_result=_ticker(progress, len(examples)),
            inflight=e.concurrency, num_gpus=gpus, stats=stats)
        metrics = finish_select(config, examples, done, errors)
        metrics.update({"executor": "ray", "workers": workers, "this_run": _this_run(stats)})
        return metrics

    return in_run_dir(config.out, asdict(config), main)


def _ticker(progress: Callable[[int, int], None] | None, total: int) -> OnResult:
    count = [0]

    def tick(key: str, row: object, error: str | None, resumed: bool) -> None:
        count[0] += 1
        if progress:
            progress(count[0], total)

    return tick


def _this_run(stats: RayStats) -> dict[str, int]:
    return {"engine_calls": stats.engine_calls, "store_hits": stats.store_hits,
            "worker_restarts": stats.restarts, "resent_items": stats.resent}
