"""ProcessBench (Zheng et al., 2024): math solutions split into steps, each labelled with the
0-based index of its earliest wrong step (-1 when every step is correct).

A record (the local JSON array and the hub rows of ``Qwen/ProcessBench`` alike):
``{"id", "generator", "problem", "steps": [str, ...], "final_answer_correct": bool,
"label": int}``. The four subsets are ``gsm8k``, ``math``, ``olympiadbench`` and
``omnimath``; on the hub each subset is a split. ProcessBench's -1 stops here: the gold
label is ``Gold(first_error=None)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from criticlab.data.hub import Source, convert, open_records
from criticlab.data.jsonl import to_example as record_to_example
from criticlab.errors import InputError
from criticlab.types import Example

SUBSETS: tuple[str, ...] = ("gsm8k", "math", "olympiadbench", "omnimath")
HUB_NAME = "Qwen/ProcessBench"
_REQUIRED = ("problem", "steps", "label", "final_answer_correct")


def source(subset: str) -> Source:
    return Source(rel=f"processbench/{subset}.json", hub=HUB_NAME, split=subset)


def to_example(rec: Mapping[str, Any], *, subset: str, line: int) -> Example:
    """One ProcessBench record -> Example; raises ``InputError`` naming the bad field (the
    caller adds the file and line). Validation is that of criticlab's own record format
    (:func:`criticlab.data.jsonl.to_example`, of which ProcessBench is a subset), plus
    the fields ProcessBench always has."""
    for key in _REQUIRED:
        if rec.get(key) is None:
            raise InputError("missing (every ProcessBench record has it)", field=key)
    generator = rec.get("generator")
    if generator is not None and not isinstance(generator, str):
        raise InputError("must be a string", field="generator")
    ex = record_to_example(rec, default_id=f"{subset}-{line}")
    meta = {"benchmark": "processbench", "subset": subset, "generator": generator}
    return replace(ex, problem=replace(ex.problem, metadata=meta))


def converter(subset: str) -> Callable[[Mapping[str, Any], int], tuple[Example]]:
    """``(record, line) -> (Example,)`` for :func:`criticlab.data.hub.convert`."""
    return lambda rec, line: (to_example(rec, subset=subset, line=line),)


def examples(spec: str, subset: str, data_dir: str | os.PathLike[str] | None,
             ) -> Iterator[Example]:
    """The examples of one subset, read lazily from the local data folder or the hub."""
    origin, records = open_records(spec, source(subset), data_dir)
    return convert(origin, records, converter(subset))
