"""What every resumable job shares: run items concurrently into the store (finished items
are read back, never recomputed or written twice), and write output files atomically."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from criticlab.critics.base import Critic
from criticlab.errors import ModelError
from criticlab.store import CachedModel, Store
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
    """Write JSON lines to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
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


async def run_items(store: Store, run: str, examples: Sequence[Example], work: Any,
               engines: EngineSpec, progress: Callable[[int, int], None] | None
               ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    count = [0]

    def tick(key: str, row: object, error: str | None, resumed: bool) -> None:
        count[0] += 1
        if progress:
            progress(count[0], len(examples))

    return await map_resumable(store, run, [(ex.problem.id, ex) for ex in examples], work,
                               concurrency=engines.concurrency, on_result=tick)


def in_run_dir(out: Path, config: dict[str, Any], main: Any) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {k: str(v) if isinstance(v, Path) else v
                                     for k, v in config.items()})
    started = time.monotonic()
    with Store(out / "store.sqlite") as store:
        metrics: dict[str, Any] = asyncio.run(main(store))
    metrics["elapsed_s"] = time.monotonic() - started
    write_json(out / "metrics.json", metrics)
    return metrics
