"""What every resumable job shares: run items concurrently into the store (finished items
are read back, never recomputed or written twice), and write output files atomically."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from criticlab.errors import ModelError
from criticlab.store import Store

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
