"""Any job on Ray: :class:`RayExecutor` runs a :class:`criticlab.jobs.Job`'s items on Ray
workers (:func:`criticlab.scale.ray.map_ray`), with the same run directory, files and metrics
as the local executor, and ``metrics["this_run"]`` adds the workers' restarts.

A run may switch executors between a crash and its resumption: both read back the same
store. Each worker builds its own engines from the job's model specs
(:class:`criticlab.engines.Engines`; ``vllm:MODEL`` is an offline vLLM engine on the worker's
GPUs, one GPU per worker unless told otherwise).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from criticlab.engines import Engines
from criticlab.errors import ConfigError
from criticlab.jobs import Job, OnResult
from criticlab.models.spec import ModelSpec
from criticlab.scale.ray import RayStats, connect, import_ray, map_ray
from criticlab.scale.worker import Work
from criticlab.store import Store
from criticlab.types import Example


def gpus_for(specs: Sequence[str | None], gpus_per_worker: float | None) -> float:
    """A vLLM worker asks Ray for one GPU unless told otherwise; other engines for none."""
    if gpus_per_worker is not None:
        return gpus_per_worker
    gpus = [0.0]
    for spec in specs:
        with contextlib.suppress(ConfigError):  # a spec never built ("none": a verifier)
            gpus.append(ModelSpec.parse(spec).gpus if spec else 0.0)
    return max(gpus)


@dataclass(frozen=True)
class JobWork:
    """Builds, inside a worker, the job's engines over the worker's store and its work."""

    job: Job

    def __call__(self, store: Store) -> Work:
        engines = Engines(self.job.engines, store)
        return Work(self.job.work(engines), engines.built.values())


@dataclass(frozen=True)
class RayExecutor:
    """The items on ``workers`` Ray workers (``job.engines.concurrency`` items in flight
    each) on the cluster at ``address`` (``None``: the one this process joined, else a new
    local one). Jobs must name their critics and models (objects cannot be rebuilt on a
    worker)."""

    address: str | None = None
    workers: int = 2
    gpus_per_worker: float | None = None
    _joined: list[bool] = field(default_factory=list, compare=False, repr=False)

    def describe(self) -> dict[str, Any]:
        return {"executor": "ray", "workers": self.workers}

    def check(self, job: Job) -> None:
        """Refuse a job with objects in place of names; join the cluster at ``address`` now,
        so that a cluster that is not there is one line before any run directory is made."""
        why = job.local_only()
        if why:
            raise ConfigError(f"{why}: the Ray executor runs named critics and models only")
        import_ray()
        if self.address is not None and connect(self.address):
            self._joined.append(True)

    def close(self) -> None:
        """Leave the cluster :meth:`check` joined (``run_job`` calls it at the end)."""
        if self._joined:
            self._joined.clear()
            import_ray().shutdown()

    async def map(self, job: Job, store: Store, key: str, items: Sequence[tuple[str, Example]],
                  on_result: OnResult, this_run: dict[str, Any]) -> None:
        e = job.engines
        stats = RayStats()
        try:
            await map_ray(store, key, items, JobWork(job), address=self.address,
                          workers=self.workers, on_result=on_result, inflight=e.concurrency,
                          num_gpus=gpus_for((e.model, e.actor), self.gpus_per_worker),
                          stats=stats)
        finally:
            this_run.update({"engine_calls": stats.engine_calls,
                             "store_hits": stats.store_hits,
                             "worker_restarts": stats.restarts, "resent_items": stats.resent})
