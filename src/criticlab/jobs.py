"""One job abstraction for every resumable job (eval, refine, select, label mc, label synth):
a :class:`Job` is a config, items, the work on one item and a finish; :func:`run_job` runs it
with an :class:`Executor` (this process, or Ray workers) into a run directory, under the one
resume rule (:func:`open_run`): finished items are read back, never recomputed or written
twice; output files are written atomically."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

__all__ = ["write_json", "write_jsonl"]  # atomic files: criticlab.rundir, used by every job

from criticlab.engines import Engines, EngineSpec
from criticlab.errors import ConfigError, InputError, ModelError
from criticlab.models.base import LanguageModel
from criticlab.rundir import RunDir, check_kept, write_json, write_jsonl
from criticlab.store import Store
from criticlab.types import Example

log = logging.getLogger(__name__)

T = TypeVar("T")
OnResult = Callable[[str, dict[str, Any] | None, str | None, bool], None]
"""``on_result(key, row or None, error or None, resumed)``: called once per item."""


async def map_resumable(
    store: Store,
    run: str,
    items: Sequence[tuple[str, T]],
    work: Callable[[T], Awaitable[dict[str, Any]]],
    *,
    concurrency: int,
    on_result: OnResult | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Run ``work`` on each (key, item) not yet stored under ``run``, ``concurrency`` at a
    time; store each result as it finishes. Returns (results by key, engine errors by key).

    An engine error (``ModelError``) on one item is returned, not stored, so a rerun tries that
    item again. ``on_result(key, result, error, resumed)`` is called for every item, first
    for the ones read back from the store.
    """
    done = read_back(store, run, items, on_result)
    errors: dict[str, str] = {}
    sem = asyncio.Semaphore(concurrency)

    async def one(key: str, item: T) -> None:
        async with sem:
            try:
                result = await work(item)
            except ModelError as e:
                log.warning("%s: %s", key, e)
                errors[key] = str(e)
                if on_result:
                    on_result(key, None, str(e), False)
                return
        store.put_result(run, key, result)
        done[key] = result
        if on_result:
            on_result(key, result, None, False)

    tasks = [asyncio.create_task(one(k, it)) for k, it in items if k not in done]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return done, errors


def read_back(store: Store, run: str, items: Sequence[tuple[str, Any]],
              on_result: OnResult | None) -> dict[str, dict[str, Any]]:
    """The items of ``run`` already stored, each reported to ``on_result`` as resumed (the
    start of every executor's map). Item keys must be unique."""
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"the item key {dup!r} occurs more than once")
    stored = dict(store.results(run))
    done = {k: stored[k] for k in keys if k in stored}
    for k in done:
        if on_result:
            on_result(k, done[k], None, True)
    return done


def keep_good(examples: Sequence[Example], errors: list[InputError],
              why: Callable[[Example], InputError | None]) -> list[Example]:
    """The examples a job can run: those ``why`` finds nothing wrong with; the others' errors
    are appended to ``errors`` (read errors may already be there), to be reported with the
    results. When no example is left but some were refused, the first error is raised: there
    is nothing to run."""
    good = []
    for ex in examples:
        problem = why(ex)
        if problem is None:
            good.append(ex)
        else:
            errors.append(problem)
    if not good and errors:
        raise errors[0]
    return good


def input_errors(errors: Sequence[InputError]) -> dict[str, Any]:
    """The metrics entry that reports a job's skipped records (the CLI prints each one as a
    located error line and exits 2)."""
    return {"input_errors": [str(e) for e in errors]} if errors else {}


class Ticker:
    """The ``on_result`` of a job's items: counts them, and those read back from the store,
    and reports ``progress(done, total)`` after each."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None = None) -> None:
        self.total = total
        self.progress = progress
        self.done = 0
        self.resumed = 0

    def __call__(self, key: str, row: object, error: str | None, resumed: bool) -> None:
        self.done += 1
        self.resumed += resumed
        if self.progress:
            self.progress(self.done, self.total)


# -- run directories -------------------------------------------------------------------------
# A job's config names its kind (eval, refine, select, label-mc, label-synth) and the fields
# that decide what it computes: IDENTITY (dotted for nested ones, "engines.model"), which a
# run directory keeps for life, and VARIANTS, which may change between runs in one directory
# because results are stored per value (label mc's method: both methods share the rollouts).
# The rest (limit, concurrency, threads, timeout) may change between a run and its
# resumption.


class JobConfig(Protocol):
    KIND: ClassVar[str]
    IDENTITY: ClassVar[tuple[str, ...]]
    VARIANTS: ClassVar[tuple[str, ...]]

    @property
    def out(self) -> Path: ...


def config_dict(config: Any) -> dict[str, Any]:
    """The config as ``config.json`` holds it (its ``to_dict()`` if it has one)."""
    to_dict = getattr(config, "to_dict", None)
    d = to_dict() if callable(to_dict) else asdict(config)
    return {"kind": config.KIND, **_plain(d)}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _lookup(d: Mapping[str, Any], dotted: str) -> Any:
    value: Any = d
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _off(old: Any, new: Any) -> bool:
    """An identity switch a run directory's config.json does not have (it was written before
    the switch existed) is off."""
    return old is None and new is False


def open_run(config: JobConfig, extra: Mapping[str, Any] | None = None) -> str:
    """Check that ``config.out`` may hold this run, record its ``config.json``, and return
    the store's key for its finished items. A directory holding another kind of run, or one
    whose identity fields differ, is refused with one line (so a resumed run can never read
    back results computed with other settings); the key is a hash of the kind and the
    identity fields (and ``extra``: what else decides the results, such as the name of a
    model object passed in place of a spec), so results are only ever read back by the
    settings that computed them."""
    new = config_dict(config)
    path = config.out / "config.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: cannot read the run's config: {e}") from e
        if not isinstance(old, dict):
            raise ConfigError(f"{path}: not a run config (a JSON object)")
        if old.get("kind", config.KIND) != config.KIND:
            raise ConfigError(f"{config.out} holds a {old['kind']} run, not {config.KIND}: "
                              "choose another --out to start a new run")
        for k in config.IDENTITY:
            if _lookup(old, k) != _lookup(new, k) and not _off(_lookup(old, k), _lookup(new, k)):
                raise ConfigError(
                    f"{config.out} holds a run with {k}={_lookup(old, k)!r}, not "
                    f"{_lookup(new, k)!r}: choose another --out to start a new run")
    config.out.mkdir(parents=True, exist_ok=True)
    write_json(path, new)
    return run_key(config, extra)


def run_key(config: JobConfig, extra: Mapping[str, Any] | None = None) -> str:
    """The store's key for the finished items of ``config``'s run: its kind and a hash of its
    identity and variant fields and ``extra``."""
    return key_of(config_dict(config), type(config), extra)


def key_of(config: Mapping[str, Any], cls: type[JobConfig] | Any,
           extra: Mapping[str, Any] | None = None) -> str:
    """:func:`run_key` of a config as ``config.json`` holds it (``cls``: its config class)."""
    fields = (*cls.IDENTITY, *cls.VARIANTS)
    # a switch that is off (False) is left out, so that adding one to a job (structured)
    # keeps the keys of the runs made before it
    ident = {k: v for k in fields if (v := _lookup(config, k)) is not False} | dict(extra or {})
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode())
    return f"{cls.KIND}@{digest.hexdigest()[:16]}"


# -- one job, two executors ------------------------------------------------------------------
Work = Callable[[Example], Awaitable[dict[str, Any]]]


class Job(ABC):
    """One resumable job: a config (``KIND``, ``IDENTITY``, ``VARIANTS``, ``out``; see
    :func:`open_run`), the items it runs (:meth:`load`), the work on one item, which returns
    the row stored for it (:meth:`work`), and the files and metrics it ends with
    (:meth:`finish`). eval, refine, select, label mc and label synth are each one; any
    :class:`Executor` runs any of them (:func:`run_job`).

    A job is pickled to Ray workers, where :meth:`work` is built over the worker's own
    engines: it holds its config and what :meth:`load` decided, nothing built. ``given``
    (model objects in place of specs) and critic objects keep a job on the local executor.
    """

    config: Any
    engines: EngineSpec
    given: Mapping[str, LanguageModel] = {}
    KEPT: ClassVar[str | None] = None
    """The output file whose records :meth:`kept_row` reads back (eval: ``results.jsonl``):
    what ``criticlab repair`` puts back into a store that lost them."""

    @staticmethod
    def kept_row(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The item and stored row of one record of :attr:`KEPT` (``None``: not finished)."""
        return None

    @property
    def source(self) -> str:
        """Where the items come from (named in errors)."""
        return str(getattr(self.config, "data", ""))

    @abstractmethod
    def check(self) -> None:
        """Check the names the job uses before anything is read or run."""

    @abstractmethod
    def load(self, errors: list[InputError]) -> list[Example]:
        """The items to run; bad records are appended to ``errors`` (see :func:`keep_good`)."""

    def key_extra(self) -> Mapping[str, Any] | None:
        """What else decides the results (objects given in place of names)."""
        return {"engines": {k: m.name for k, m in self.given.items()}} if self.given else None

    def local_only(self) -> str | None:
        """Why this job cannot run on Ray workers (objects that cannot be rebuilt there)."""
        return "a model object was given in place of a model spec" if self.given else None

    @abstractmethod
    def work(self, engines: Engines) -> Work:
        """The work on one item, built once per executor (per Ray worker) over ``engines``."""

    @abstractmethod
    def finish(self, items: Sequence[Example], done: Mapping[str, dict[str, Any]],
               failed: Mapping[str, str]) -> dict[str, Any]:
        """Write the job's output files from what is done (in the items' order) and return
        its metrics. Also called for an interrupted run, with what it finished."""

    def tracker(self, items: Sequence[Example],
                progress: Callable[..., None] | None) -> Ticker:
        return Ticker(len(items), progress)


class Executor(Protocol):
    """Runs a job's items into the store: :class:`LocalExecutor` or
    :class:`criticlab.scale.RayExecutor`."""

    def describe(self) -> dict[str, Any]:
        """The executor's entries in ``metrics.json``."""
        ...

    def check(self, job: Job) -> None:
        """Refuse, with one line, a job this executor cannot run."""
        ...

    async def map(self, job: Job, store: Store, key: str, items: Sequence[tuple[str, Example]],
                  on_result: OnResult, this_run: dict[str, Any]) -> None:
        """Run the items not yet stored under ``key``, store each result, report each item
        to ``on_result`` (first those read back); keep ``this_run``'s figures current
        (``engine_calls``, ``store_hits``, ...), also when interrupted."""
        ...


@dataclass(frozen=True)
class LocalExecutor:
    """The items in this process, ``job.engines.concurrency`` at a time."""

    def describe(self) -> dict[str, Any]:
        return {"executor": "local"}

    def check(self, job: Job) -> None:
        pass

    async def map(self, job: Job, store: Store, key: str, items: Sequence[tuple[str, Example]],
                  on_result: OnResult, this_run: dict[str, Any]) -> None:
        engines = Engines(job.engines, store, job.given)
        try:
            await map_resumable(store, key, items, job.work(engines),
                                concurrency=job.engines.concurrency, on_result=on_result)
        finally:
            await engines.aclose()
            this_run.update(engines.stats())


def run_job(job: Job, executor: Executor | None = None,
            progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run ``job`` into ``job.config.out`` with ``executor`` (default: this process): check
    the names and the executor (Ray: the cluster is joined), load the items, take the run
    directory (:class:`~criticlab.rundir.RunDir`: checked, locked; :func:`open_run`: refused
    if it holds another run), run the items not yet stored, then write the job's files and
    ``metrics.json``, which is returned. Interrupted (Ctrl-C, an engine or disk error), it
    still writes what it finished; a rerun resumes. A store it cannot read is one line and
    the run's files are left as they are: they are never written from less than the store
    held. ``progress`` is passed to the job's tracker."""
    executor = executor or LocalExecutor()
    try:
        job.check()
        executor.check(job)
        bad: list[InputError] = []
        items = job.load(bad)
        ids = [ex.problem.id for ex in items]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ConfigError(f"{job.source}: the item id {dup!r} occurs more than once")
        with RunDir(job.config.out) as run_dir:
            key = open_run(job.config, job.key_extra())
            with run_dir.store() as store:
                return _run(job, executor, store, key, items, bad, progress)
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()


def _run(job: Job, executor: Executor, store: Store, key: str, items: Sequence[Example],
         bad: list[InputError], progress: Callable[..., None] | None) -> dict[str, Any]:
    started = time.monotonic()
    stored = store.result_items(key)
    if job.KEPT is not None:  # a store that lost what the output file holds is refused
        check_kept(store, job.config.out, job.KEPT, job.kept_row, stored)
    held = stored & {ex.problem.id for ex in items}
    tick = job.tracker(items, progress)
    done: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}

    def on_result(k: str, row: dict[str, Any] | None, error: str | None, resumed: bool) -> None:
        if row is not None:
            done[k] = row
            failed.pop(k, None)
        else:
            failed[k] = error or "failed"
        tick(k, row, error, resumed)

    this_run: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    try:
        asyncio.run(executor.map(job, store, key, [(ex.problem.id, ex) for ex in items],
                                 on_result, this_run))
    finally:
        if held <= done.keys():  # never write the files from less than the store held
            metrics = job.finish(items, done, failed)
            metrics.update({
                "errors": len(failed), "complete": len(done) == len(items),
                **executor.describe(),
                "this_run": {**this_run, "resumed_items": tick.resumed},
                "elapsed_s": time.monotonic() - started, **input_errors(bad)})
            write_json(job.config.out / "metrics.json", metrics)
    return metrics
