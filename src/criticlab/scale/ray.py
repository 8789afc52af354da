"""Run a job's items on Ray actors; the driver alone writes the store.

:func:`map_ray` has the contract of :func:`criticlab.jobs.map_resumable`: items already stored
under the run are read back, never recomputed; each result is stored as it arrives; no
result is written twice. The work runs in ``workers`` Ray actors (:class:`~criticlab.scale.
worker.Worker`), each built once from a picklable spec with its own model (an in-process GGUF
or vLLM engine each, or a client to a server). The responses a worker generates come back
with the item's result and the driver stores them, so the response cache is as complete as
on one machine; a worker on the driver's machine (or on a shared filesystem) also reads the
store file read-only to answer repeated requests.

A worker that dies (killed, out of memory, node lost) is replaced by a fresh actor and its
in-flight items are sent again; an item whose worker died ``retries + 1`` times is returned
as an error, like an engine error, and a rerun tries it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from criticlab.errors import ConfigError
from criticlab.jobs import OnResult, read_back
from criticlab.models.base import Generation
from criticlab.scale.worker import Worker, WorkSpec
from criticlab.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")
INSTALL_HINT = "pip install 'criticlab[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or a ``ConfigError`` saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"ray is not installed: {INSTALL_HINT}") from e
    return ray


@dataclass
class RayStats:
    """What one :func:`map_ray` call did, filled in as it runs."""

    engine_calls: int = 0
    store_hits: int = 0
    responses: int = 0
    """Responses the workers sent back (the driver writes each once; repeats are ignored)."""
    restarts: int = 0
    """Workers replaced after they died."""
    resent: int = 0
    """Items sent again because their worker died."""
    workers_read_store: int = 0
    """Workers that could read the store file (same machine or shared filesystem)."""
    by_worker: dict[str, dict[str, int]] = field(default_factory=dict)


def connect(address: str | None, cpus: float = 0.0) -> bool:
    """Join the Ray cluster at ``address`` (``None``: the one this process already joined,
    else a new local one with at least ``cpus`` CPUs, so that every worker fits even on a
    smaller machine). Returns whether this call started Ray (then the caller shuts it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(num_cpus=max(os.cpu_count() or 1, math.ceil(cpus)),
                     include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except Exception as e:  # ConnectionError, or whatever a ray:// client raises
        raise ConfigError(no_cluster(address, e)) from e
    return True


def no_cluster(address: str | None, e: BaseException) -> str:
    """One line for a Ray that cannot be joined or started, with what to do."""
    why = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if address is None:
        return f"cannot start a local Ray ({why}); or run without --executor ray"
    return (f"cannot join the Ray cluster at --address {address} ({why}): start one with "
            "`ray start --head` on this machine, or drop --address to run on a local Ray "
            "started for this command")


def _check_fits(ray: Any, workers: int, num_cpus: float, num_gpus: float) -> None:
    have = ray.cluster_resources()
    for what, each in (("CPU", num_cpus), ("GPU", num_gpus)):
        if each and have.get(what, 0.0) < workers * each:
            log.warning("%d workers need %g %ss but the cluster has %g: the rest wait until "
                        "it grows", workers, workers * each, what, have.get(what, 0.0))


async def map_ray(
    store: Store,
    run: str,
    items: Sequence[tuple[str, T]],
    make_work_spec: WorkSpec,
    *,
    address: str | None = None,
    workers: int = 2,
    on_result: OnResult | None = None,
    inflight: int = 2,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    retries: int = 2,
    stats: RayStats | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Run ``make_work_spec``'s work on each (key, item) not yet stored under ``run``, on
    ``workers`` Ray actors with at most ``inflight`` items each; store each result as it
    arrives. Returns (results by key, errors by key), like
    :func:`~criticlab.jobs.map_resumable`, and calls ``on_result`` the same way.

    ``make_work_spec`` and the items are pickled to the workers. ``num_cpus``/``num_gpus``
    are each worker's Ray resources (a vLLM worker wants ``num_gpus`` = its tensor-parallel
    size). Joins the cluster at ``address`` unless this process already joined one; a local
    Ray it starts itself it also shuts down. Does not write anything but the driver's store.
    """
    if workers < 1 or inflight < 1 or retries < 0:
        raise ConfigError("workers and inflight must be at least 1, retries at least 0")
    stats = stats if stats is not None else RayStats()
    done = read_back(store, run, items, on_result)
    errors: dict[str, str] = {}
    todo: deque[tuple[str, T]] = deque((k, it) for k, it in items if k not in done)
    if not todo:
        return done, errors
    ray = import_ray()
    size = min(workers, len(todo))
    started = connect(address, size * num_cpus)
    pool: _Pool | None = None
    try:
        _check_fits(ray, size, num_cpus, num_gpus)
        pool = _Pool(ray, make_work_spec, str(store.path.resolve()), size, num_cpus,
                     num_gpus, stats)
        await pool.start()
        await _drive(ray, pool, store, run, todo, inflight, retries, done, errors, on_result,
                     stats)
    finally:
        if pool is not None:
            pool.stop()
        if started:
            ray.shutdown()
    return done, errors


class _Pool:
    """The workers, one per slot; a dead one is replaced in its slot."""

    def __init__(self, ray: Any, spec: WorkSpec, store_path: str, size: int, num_cpus: float,
                 num_gpus: float, stats: RayStats) -> None:
        self.ray = ray
        self.cls = ray.remote(Worker)
        self.spec = spec
        self.store_path = store_path
        self.options = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_restarts": 0}
        self.prefix = f"criticlab-{uuid.uuid4().hex[:8]}"
        self.generation = [0] * size
        self.stats = stats
        self.actors: list[Any] = []
        for slot in range(size):
            self.actors.append(self._new(slot))

    def _new(self, slot: int) -> Any:
        return self.cls.options(name=self.name(slot), **self.options).remote(
            self.spec, self.store_path)

    def name(self, slot: int) -> str:
        return f"{self.prefix}-w{slot}-{self.generation[slot]}"

    async def start(self) -> None:
        """Build every worker's models now, so a bad setting fails at once and clearly."""
        refs = [a.setup.remote() for a in self.actors]
        for info in await asyncio.to_thread(self.ray.get, refs):
            if info["config_error"]:
                raise ConfigError(info["config_error"])
            self.stats.workers_read_store += bool(info["reads_store"])

    def replace(self, slot: int) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.ray.kill(self.actors[slot])
        self.generation[slot] += 1
        self.actors[slot] = self._new(slot)
        self.stats.restarts += 1

    def stop(self) -> None:
        for a in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(a)


async def _drive(ray: Any, pool: _Pool, store: Store, run: str, todo: deque[tuple[str, Any]],
                 inflight: int, retries: int, done: dict[str, dict[str, Any]],
                 errors: dict[str, str], on_result: OnResult | None, stats: RayStats) -> None:
    from ray.exceptions import RayActorError

    pending: dict[Any, tuple[int, Any, str, str, Any]] = {}  # ref -> slot, actor, name, key, item
    load = [0] * len(pool.actors)
    deaths: dict[str, int] = {}
    while todo or pending:
        for slot in range(len(pool.actors)):
            while todo and load[slot] < inflight:
                key, item = todo.popleft()
                actor = pool.actors[slot]
                pending[actor.run.remote(key, item)] = (slot, actor, pool.name(slot), key, item)
                load[slot] += 1
        # a timeout, so that a cancelled run's waiting thread ends soon after
        ready, _ = await asyncio.to_thread(ray.wait, list(pending), num_returns=1, timeout=5.0)
        for ref in ready:
            slot, actor, name, key, item = pending.pop(ref)
            load[slot] -= 1
            try:
                payload = ray.get(ref)
            except RayActorError as e:
                if pool.actors[slot] is actor:
                    log.warning("worker %s died (%s); starting a new one", pool.name(slot),
                                type(e).__name__)
                    pool.replace(slot)
                deaths[key] = deaths.get(key, 0) + 1
                if deaths[key] > retries:
                    msg = f"its worker died {deaths[key]} times"
                    errors[key] = msg
                    if on_result:
                        on_result(key, None, msg, False)
                else:
                    stats.resent += 1
                    todo.appendleft((key, item))
                continue
            _accept(store, run, name, payload, done, errors, on_result, stats)


def _accept(store: Store, run: str, worker: str, payload: dict[str, Any],
            done: dict[str, dict[str, Any]], errors: dict[str, str],
            on_result: OnResult | None, stats: RayStats) -> None:
    """Write one returned item: its responses first (so a result is never stored without
    the responses it was computed from), then its result, once."""
    for key, model, request, gen in payload["responses"]:
        store.put_response(key, model, request, Generation.from_dict(gen))
        stats.responses += 1
    # Each payload carries its worker's running totals when the item finished; payloads of
    # concurrent items may arrive out of order, and the totals only grow: keep the largest.
    seen = stats.by_worker.get(worker, {})
    stats.by_worker[worker] = {k: max(v, seen.get(k, 0)) for k, v in payload["stats"].items()}
    stats.engine_calls = sum(s["engine_calls"] for s in stats.by_worker.values())
    stats.store_hits = sum(s["store_hits"] for s in stats.by_worker.values())
    key, result, error = payload["key"], payload["result"], payload["error"]
    if error is not None:
        log.warning("%s: %s", key, error)
        errors[key] = error
        if on_result:
            on_result(key, None, error, False)
        return
    if store.put_result(run, key, result):
        done[key] = result
        if on_result:
            on_result(key, result, None, False)
    else:  # cannot happen while one driver owns the run; never overwrite
        log.warning("%s was already stored under %s; kept the first result", key, run)
        done[key] = store.get_result(run, key) or result
