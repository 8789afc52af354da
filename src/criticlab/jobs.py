"""What every resumable job shares: run items concurrently into the store (finished items
are read back, never recomputed or written twice), and write output files atomically."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from criticlab.critics.base import Critic
from criticlab.errors import ConfigError, InputError, ModelError
from criticlab.store import LINE_BREAKS, CachedModel, Store, json_text
from criticlab.types import Example

log = logging.getLogger(__name__)

T = TypeVar("T")


async def map_resumable(
    store: Store,
    run: str,
    items: Sequence[tuple[str, T]],
    work: Callable[[T], Awaitable[dict[str, Any]]],
    *,
    concurrency: int,
    on_result: Callable[[str, dict[str, Any] | None, str | None, bool], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Run ``work`` on each (key, item) not yet stored under ``run``, ``concurrency`` at a
    time; store each result as it finishes. Returns (results by key, engine errors by key).

    An engine error (``ModelError``) on one item is returned, not stored, so a rerun tries that
    item again. ``on_result(key, result, error, resumed)`` is called for every item, first
    for the ones read back from the store.
    """
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"the item key {dup!r} occurs more than once")
    stored = dict(store.results(run))
    done = {k: stored[k] for k in keys if k in stored}
    errors: dict[str, str] = {}
    for k in done:
        if on_result:
            on_result(k, done[k], None, True)
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


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write JSON lines to ``path`` atomically (a temporary file, then a rename). Never fails
    on text: a lone surrogate is written as its escape (:func:`criticlab.store.json_text`),
    and U+2028, U+2029, U+0085 as theirs, so every reader sees one record a line."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json_text(row).translate(LINE_BREAKS) + "\n")
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json_text(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True)
class EngineSpec:
    """Which engines a job uses; the actor defaults to the critic's model."""

    model: str = "embedded"
    actor: str | None = None
    base_url: str | None = None
    threads: int | None = None
    timeout: float = 120.0
    concurrency: int = 4
    max_tokens: int = 1024


class Engines:
    """Builds each named model once, wrapped in the store, on first use."""

    def __init__(self, spec: EngineSpec, store: Store) -> None:
        self.spec = spec
        self.store = store
        self.built: dict[str, CachedModel] = {}

    def get(self, name: str) -> CachedModel:
        if name not in self.built:
            from criticlab.registry import make_model

            s = self.spec
            self.built[name] = CachedModel(
                make_model(name, base_url=s.base_url, threads=s.threads, timeout=s.timeout,
                           concurrency=s.concurrency), self.store)
        return self.built[name]

    def actor(self) -> CachedModel:
        return self.get(self.spec.actor or self.spec.model)

    def critic(self, spec: str) -> Critic:
        from criticlab.registry import make_critic

        return make_critic(spec, lambda: self.get(self.spec.model),
                           max_tokens=self.spec.max_tokens)

    async def aclose(self) -> None:
        for m in self.built.values():
            await m.aclose()

    def stats(self) -> dict[str, int]:
        return {"engine_calls": sum(m.stats.calls for m in self.built.values()),
                "store_hits": sum(m.stats.hits for m in self.built.values())}


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


async def run_items(store: Store, run: str, examples: Sequence[Example], work: Any,
                    engines: EngineSpec, tick: Ticker
                    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    return await map_resumable(store, run, [(ex.problem.id, ex) for ex in examples], work,
                               concurrency=engines.concurrency, on_result=tick)


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
            if _lookup(old, k) != _lookup(new, k):
                raise ConfigError(
                    f"{config.out} holds a run with {k}={_lookup(old, k)!r}, not "
                    f"{_lookup(new, k)!r}: choose another --out to start a new run")
    config.out.mkdir(parents=True, exist_ok=True)
    write_json(path, new)
    return run_key(config, extra)


def run_key(config: JobConfig, extra: Mapping[str, Any] | None = None) -> str:
    """The store's key for the finished items of ``config``'s run: its kind and a hash of its
    identity and variant fields and ``extra``."""
    new = config_dict(config)
    fields = (*config.IDENTITY, *config.VARIANTS)
    ident = {k: _lookup(new, k) for k in fields} | dict(extra or {})
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode())
    return f"{config.KIND}@{digest.hexdigest()[:16]}"


def in_run_dir(config: JobConfig,
               main: Callable[[Store, str], Coroutine[Any, Any, dict[str, Any]]]
               ) -> dict[str, Any]:
    """Run ``main(store, run_key)`` in ``config.out`` (see :func:`open_run`) and write the
    metrics it returns, with the elapsed time, to ``metrics.json``."""
    key = open_run(config)
    started = time.monotonic()
    with Store(config.out / "store.sqlite") as store:
        metrics: dict[str, Any] = asyncio.run(main(store, key))
    metrics["elapsed_s"] = time.monotonic() - started
    write_json(config.out / "metrics.json", metrics)
    return metrics
