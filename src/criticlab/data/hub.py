"""Where a named benchmark's records come from, and the plumbing every loader shares.

A named benchmark (``processbench:gsm8k``, ``gsm8k:test``, ...) is read from a local folder
laid out like ``shared/data`` (``processbench/gsm8k.json``, ``gsm8k/test.jsonl``, ...): the
``data_dir`` argument when given, else the folder named by ``$CRITICLAB_DATA``. Only when
that folder lacks the file is the Hugging Face hub tried, through ``datasets.load_dataset``
(imported here, lazily: ``datasets`` is optional). Either way the loader sees the same
stream of ``(line, record)`` pairs, so one conversion function serves both; for hub rows the
"line" is the 1-based row number.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from criticlab.data.jsonl import iter_raw, read_text
from criticlab.errors import ConfigError, InputError
from criticlab.types import Example

log = logging.getLogger(__name__)

ENV_VAR = "CRITICLAB_DATA"

Records = Iterator[tuple[int, Any | InputError]]


@dataclass(frozen=True)
class Source:
    """One named benchmark split: its file under a data folder and its hub coordinates."""

    rel: str  # e.g. "processbench/gsm8k.json"
    hub: str  # e.g. "Qwen/ProcessBench"
    split: str
    config: str | None = None


def data_root(data_dir: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    """The local data folder to look in (``data_dir``, else ``$CRITICLAB_DATA``) and a
    description of it for error messages."""
    if data_dir is not None:
        return Path(data_dir), f"data_dir={data_dir}"
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env), f"${ENV_VAR}={env}"
    return None, f"no data_dir given and ${ENV_VAR} unset"


def open_records(spec: str, source: Source, data_dir: str | os.PathLike[str] | None,
                 ) -> tuple[str, Records]:
    """``(origin, records)`` for ``source``: from the local file when the data folder has
    it, else from the hub. ``origin`` names the file (or hub dataset) for error messages.
    Nothing is read until the records are iterated."""
    root, where = data_root(data_dir)
    if root is not None and (root / source.rel).is_file():
        path = str(root / source.rel)
        return path, _file_records(path)
    looked = f"{source.rel} not found ({where})"
    origin = f"{source.hub}[{source.split}]"
    return origin, _hub_records(spec, source, looked)


def _file_records(path: str) -> Records:
    log.info("reading %s", path)
    yield from iter_raw(path, read_text(path))


def _hub_records(spec: str, source: Source, looked: str) -> Records:
    """Rows of a hub dataset split. Raises ``ConfigError`` when ``datasets`` is missing or
    the hub cannot be reached (offline, no cached copy, unknown name)."""
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            f"cannot load benchmark {spec!r}: {looked}, and reading it from the Hugging Face "
            f"hub ({source.hub}) needs the datasets package: pip install datasets "
            f"(or point ${ENV_VAR} / data_dir at a folder holding {source.rel})"
        ) from None
    log.info("loading %s split %s from the Hugging Face hub", source.hub, source.split)
    try:
        ds = datasets.load_dataset(source.hub, source.config, split=source.split)
    except Exception as e:  # offline, unknown name, auth, broken cache: all one user error
        raise ConfigError(
            f"cannot load benchmark {spec!r}: {looked}, and the Hugging Face hub dataset "
            f"{source.hub} (split {source.split}) is unavailable: {type(e).__name__}: {e}. "
            f"Point ${ENV_VAR} or data_dir at a folder holding {source.rel}, or go online"
        ) from None
    for i, row in enumerate(ds, start=1):
        yield i, dict(row)


def convert(origin: str, records: Records,
            fn: Callable[[Mapping[str, Any], int], Iterable[Example]],
            errors: list[InputError] | None = None) -> Iterator[Example]:
    """Apply ``fn(record, line)`` to each record. A bad record is an ``InputError`` located at
    ``origin:line``: raised, so a benchmark is not scored on a subset of its records by
    accident, unless ``errors`` is given: then it is appended there and skipped (the caller
    reports it)."""
    count = 0
    for line, rec in records:
        count += 1
        try:
            if isinstance(rec, InputError):
                raise rec
            if not isinstance(rec, Mapping):
                raise InputError(f"a record must be a JSON object, not {type(rec).__name__}",
                                 path=origin, line=line)
            try:
                examples = list(fn(rec, line))
            except InputError as e:
                e.path, e.line = origin, line
                raise
        except InputError as e:
            if errors is None:
                raise
            errors.append(e)
            continue
        yield from examples
    if count == 0:
        raise InputError("no records (the file is empty)", path=origin)


def unique_ids(examples: Iterable[Example]) -> Iterator[Example]:
    """Make problem ids unique within one benchmark spec, deterministically and without
    looking ahead (so ``limit`` keeps a prefix of the full list): the first example with an
    id keeps it; a later one becomes ``SUBSET/ID`` (``metadata["subset"]``), and if that is
    taken too, ``ID#2``, ``ID#3``, ... in order of appearance."""
    seen: set[str] = set()
    for ex in examples:
        pid = ex.problem.id
        if pid in seen:
            subset = ex.problem.metadata.get("subset")
            new = f"{subset}/{pid}" if subset else pid
            k = 2
            while new in seen:
                new, k = f"{pid}#{k}", k + 1
            log.debug("duplicate id %r renamed %r", pid, new)
            ex = replace(ex, problem=replace(ex.problem, id=new))
            pid = new
        seen.add(pid)
        yield ex
