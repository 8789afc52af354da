"""``evaluate``, ``label_mc`` and ``select`` on Ray: the same run directory, files and metrics as
the local runners (:func:`criticlab.evaluate.evaluate`, :func:`criticlab.label.mc.label_mc`,
:func:`criticlab.infer.jobs.run_select`),
with the items spread over Ray workers by :func:`criticlab.scale.ray.map_ray`.

A run may switch executors between a crash and its resumption: both read back the same
store. Each worker builds its own model from the config's model spec
(:func:`criticlab.registry.make_model`; ``vllm:MODEL`` is an offline vLLM engine on the
worker's GPUs, one GPU per worker unless told otherwise).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from criticlab import registry
from criticlab.critics.base import Critic
from criticlab.errors import InputError
from criticlab.evaluate import (
    Collector,
    EvalConfig,
    EvalProgress,
    EvalRun,
    prepare_run,
)
from criticlab.infer.jobs import SelectConfig, finish_select, load_problems, select_work
from criticlab.jobs import (
    Engines,
    Ticker,
    in_run_dir,
    input_errors,
    open_run,
    write_json,
    write_jsonl,
)
from criticlab.label.mc import MCConfig, _load, label_example, summarize
from criticlab.models.spec import ModelSpec
from criticlab.scale.ray import RayStats, map_ray
from criticlab.scale.worker import Work
from criticlab.store import CachedModel, Store
from criticlab.types import Example, Result


# -- models ----------------------------------------------------------------------------------
def gpus_for(spec: str, gpus_per_worker: float | None) -> float:
    """A vLLM worker asks Ray for one GPU unless told otherwise; other engines for none."""
    if gpus_per_worker is not None:
        return gpus_per_worker
    return ModelSpec.parse(spec).gpus


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
                models.append(CachedModel(registry.make_model(
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
    from criticlab.registry import check_names

    check_names(config.critic, config.model, template=config.template)
    items, key, errors = prepare_run(config, examples)
    with Store(config.out / "store.sqlite") as store:
        return asyncio.run(_evaluate(config, items, key, store, progress, address,
                                     workers, gpus_for(config.model, gpus_per_worker), errors))


async def _evaluate(config: EvalConfig, examples: list[Example], key: str, store: Store,
                    progress: Callable[[EvalProgress], None] | None, address: str | None,
                    workers: int, gpus: float, errors: Sequence[InputError]) -> EvalRun:
    collect = Collector(config, examples, progress, errors)
    stats = RayStats()
    complete = False
    try:
        done, _ = await map_ray(
            store, key, [(ex.problem.id, ex) for ex in examples], CritiqueSpec(config),
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
        actor = CachedModel(registry.make_model(
            c.actor, base_url=c.base_url, threads=c.threads, concurrency=c.concurrency), store)
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
    ModelSpec.parse(config.actor)
    errors: list[InputError] = []
    examples = _load(config, errors)
    key = open_run(config)
    started = time.monotonic()
    with Store(config.out / "store.sqlite") as store:
        metrics = asyncio.run(_label(config, examples, store, key, progress, address, workers,
                                     gpus_for(config.actor, gpus_per_worker)))
    metrics["elapsed_s"] = time.monotonic() - started
    metrics.update(input_errors(errors))
    write_json(config.out / "metrics.json", metrics)
    return metrics


async def _label(config: MCConfig, examples: Sequence[Example], store: Store, key: str,
                 progress: Callable[[int, int], None] | None, address: str | None,
                 workers: int, gpus: float) -> dict[str, Any]:
    name = ModelSpec.parse(config.actor).name
    stats = RayStats()
    done, errors = await map_ray(
        store, key, [(ex.problem.id, ex) for ex in examples],
        RolloutSpec(config), address=address, workers=workers,
        on_result=(tick := Ticker(len(examples), progress)),
        inflight=config.concurrency, num_gpus=gpus, stats=stats)
    rows = [done[ex.problem.id] for ex in examples if ex.problem.id in done]
    write_jsonl(config.out / "labels.jsonl", rows)
    metrics = summarize(rows)
    metrics.update({"method": config.method, "actor": name, "rollouts": config.rollouts,
                    "errors": len(errors), "complete": len(done) == len(examples),
                    "executor": "ray", "workers": workers, "this_run": _this_run(stats, tick)})
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
        ModelSpec.parse(spec)
    if config.critic:
        check_names(config.critic, e.model)
    bad: list[InputError] = []
    examples = load_problems(config.data, config.limit, bad)
    gpus = gpus_for(e.actor or e.model, gpus_per_worker)

    async def main(store: Store, key: str) -> dict[str, Any]:
        stats = RayStats()
        done, errors = await map_ray(
            store, key, [(ex.problem.id, ex) for ex in examples], SelectSpec(config),
            address=address, workers=workers,
            on_result=(tick := Ticker(len(examples), progress)),
            inflight=e.concurrency, num_gpus=gpus, stats=stats)
        metrics = finish_select(config, examples, done, errors)
        metrics.update({"executor": "ray", "workers": workers,
                        "this_run": _this_run(stats, tick), **input_errors(bad)})
        return metrics

    return in_run_dir(config, main)


def _this_run(stats: RayStats, tick: Ticker) -> dict[str, int]:
    return {"engine_calls": stats.engine_calls, "store_hits": stats.store_hits,
            "resumed_items": tick.resumed,
            "worker_restarts": stats.restarts, "resent_items": stats.resent}
