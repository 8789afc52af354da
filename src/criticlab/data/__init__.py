"""Loaders that return Examples with gold labels: :func:`load_benchmark` is the one entry
point (the CLI's ``--benchmark``).

Specs (see :data:`SPECS`):

- ``processbench``: the four ProcessBench subsets, in the order gsm8k, math, olympiadbench,
  omnimath; ``processbench:SUBSET`` for one of them;
- ``prmbench``: PRMBench (two Examples per record: the original and the modified process);
- ``gsm8k`` (the test split), ``gsm8k:test``, ``gsm8k:train``: reference solutions, all
  correct;
- a path to a file: a ProcessBench-format JSON array, PRMBench JSONL, GSM8K JSONL, or
  criticlab's own records (:mod:`criticlab.data.jsonl`), told apart by the fields of
  the first record (a named spec wins over a file of the same name: write ``./NAME``).

Named specs are read from ``data_dir``, else from ``$CRITICLAB_DATA`` (a folder laid out as
``processbench/SUBSET.json``, ``prmbench/prmbench_preview.jsonl``, ``gsm8k/SPLIT.jsonl``),
else from the Hugging Face hub (needs ``pip install datasets`` and a network); see
:mod:`criticlab.data.hub`.

Ids are unique within a spec: the first example with an id keeps it, a later one is renamed
``SUBSET/ID`` (then ``ID#2``, ``ID#3``, ...), in order, so the first N of a spec are the same
with or without ``limit``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from itertools import chain, islice
from pathlib import Path

from criticlab.data import gsm8k, prmbench, processbench
from criticlab.data.hub import ENV_VAR, convert, unique_ids
from criticlab.data.jsonl import iter_raw, read_examples, read_text
from criticlab.errors import ConfigError, InputError
from criticlab.types import Example

__all__ = ["ENV_VAR", "SPECS", "load_benchmark", "load_file"]

SPECS: tuple[str, ...] = (
    "processbench",
    *(f"processbench:{s}" for s in processbench.SUBSETS),
    "prmbench",
    "gsm8k",
    *(f"gsm8k:{s}" for s in gsm8k.SPLITS),
)

_PROCESSBENCH_FIELDS = ("problem", "steps", "label", "final_answer_correct", "generator")


def load_benchmark(spec: str, *, limit: int | None = None,
                   data_dir: str | os.PathLike[str] | None = None,
                   errors: list[InputError] | None = None,
                   need_solution: bool = False) -> list[Example]:
    """The examples of ``spec`` (a name from :data:`SPECS` or a file path), in order, the
    first ``limit`` of them when given (only as much data as that needs is read).

    Raises ``ConfigError`` for an unknown spec or when the data is neither local nor
    reachable on the hub, and ``InputError`` (file, line, field) at the first bad record;
    with ``errors`` given, bad records are appended there and skipped instead (the caller
    reports them), unless no record is good: then the first is raised. With
    ``need_solution``, a record of criticlab's format with no steps is a bad record.
    Does not download anything when the data folder has the file."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                              or limit < 0):
        raise ConfigError(f"limit must be a whole number >= 0, got {limit!r}")
    found: list[InputError] = []
    examples = list(islice(unique_ids(_examples(spec, data_dir, found, need_solution)), limit))
    if found and (errors is None or not examples):
        raise found[0]
    if errors is not None:
        errors.extend(found)
    return examples


def _examples(spec: str, data_dir: str | os.PathLike[str] | None,
              errors: list[InputError], need_solution: bool = False) -> Iterator[Example]:
    name, colon, part = spec.strip().partition(":")
    name, part = name.lower(), part.strip().lower()
    if name == "processbench":
        subsets = processbench.SUBSETS if not colon else (_choose(spec, part,
                                                                  processbench.SUBSETS),)
        return chain.from_iterable(processbench.examples(spec, s, data_dir) for s in subsets)
    if name == "gsm8k":
        split = "test" if not colon else _choose(spec, part, gsm8k.SPLITS)
        return gsm8k.examples(spec, split, data_dir)
    if name == "prmbench" and not colon:
        return prmbench.examples(spec, data_dir)
    if spec.endswith((".json", ".jsonl")) or "/" in spec or os.sep in spec \
            or Path(spec).is_file():
        return load_file(spec, errors, need_solution=need_solution)
    raise ConfigError(f"unknown benchmark {spec!r}: use one of {', '.join(SPECS)}, "
                      "or a path to a .json/.jsonl file")


def _choose(spec: str, part: str, options: tuple[str, ...]) -> str:
    if part not in options:
        raise ConfigError(f"unknown benchmark {spec!r}: after ':' use one of "
                          f"{', '.join(options)} (valid specs: {', '.join(SPECS)})")
    return part


def load_file(path: str, errors: list[InputError] | None = None, *,
              need_solution: bool = False) -> Iterator[Example]:
    """The examples of a benchmark file, whose format is told by its first record: PRMBench
    (``original_process``/``modified_process``), ProcessBench (``problem``, ``steps``,
    ``label``, ``final_answer_correct``, ``generator``; the subset is the file's stem),
    GSM8K (``question`` and ``answer``, no steps), else criticlab's own format. Raises
    ``InputError`` at the first bad record, as it is reached (or, with ``errors``, appends
    each there and goes on)."""
    records = list(iter_raw(path, read_text(path)))
    first = next((rec for _, rec in records if not isinstance(rec, InputError)), None)
    stem = Path(path).stem
    if isinstance(first, Mapping):
        if any(k in first for k in prmbench.MARKERS):
            return convert(path, iter(records), prmbench.converter, errors)
        if all(k in first for k in _PROCESSBENCH_FIELDS):
            return convert(path, iter(records), processbench.converter(stem), errors)
        if "question" in first and "answer" in first and not (
            "steps" in first or "solution" in first
        ):
            return convert(path, iter(records), gsm8k.converter(stem), errors)
    return _strict(read_examples(path, need_solution=need_solution), errors)


def _strict(items: Iterator[Example | InputError],
            errors: list[InputError] | None) -> Iterator[Example]:
    for item in items:
        if isinstance(item, InputError):
            if errors is None:
                raise item
            errors.append(item)
            continue
        yield item
