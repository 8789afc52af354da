"""PRMBench (Song et al., 2025): correct step-by-step solutions and copies of them into which
one kind of error was written on purpose.

A record (one JSONL line, and one row of the hub dataset ``hitsmy/PRMBench_Preview``, split
``train``): ``idx``, ``classification`` (the error type: ``circular``, ``confidence``,
``counterfactual``, ``redundency``, ``multi_solutions``, ...), ``original_question``,
``original_process`` (steps), ``modified_question``, ``modified_process``, ``error_steps``
(1-based indices of the wrong steps of the modified process), ``modified_steps``,
``reason``, ``question``.

Each record gives two Examples, ``IDX:original`` (every step correct) and ``IDX:modified``
(``first_error = min(error_steps) - 1``, ``step_labels`` false exactly at the error steps;
an empty ``error_steps``, as in ``multi_solutions``, means the modified process is correct
too). ``metadata["subset"]`` is the classification and ``metadata["variant"]`` says which of
the two it is. ``final_answer_correct`` is left unknown (``None``): PRMBench does not label
it. The original process recurs under every classification built from it, so the
``original`` examples repeat content across subsets. ``reason`` (the gold explanation) is
not put in the problem, so that it cannot leak into a critic's prompt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from criticlab.data.hub import Source, convert, open_records
from criticlab.data.jsonl import _check_utf8
from criticlab.errors import InputError
from criticlab.types import Example, Gold, Problem, Solution

HUB_NAME = "hitsmy/PRMBench_Preview"
SOURCE = Source(rel="prmbench/prmbench_preview.jsonl", hub=HUB_NAME, split="train")

#: Fields that identify a PRMBench record in a file of unknown format.
MARKERS: tuple[str, ...] = ("original_process", "modified_process")


def to_examples(rec: Mapping[str, Any]) -> tuple[Example, Example]:
    """One PRMBench record -> ``(original, modified)``; raises ``InputError`` naming the bad
    field (the caller adds the file and line)."""
    _check_utf8(rec)
    idx = rec.get("idx")
    if idx is None:
        raise InputError("missing (every PRMBench record has it)", field="idx")
    if not isinstance(idx, str | int) or isinstance(idx, bool) or not str(idx).strip():
        raise InputError("must be a non-empty string or an integer", field="idx")
    classification = _text(rec, "classification")
    original = _steps(rec, "original_process")
    modified = _steps(rec, "modified_process")
    errors = _error_steps(rec, len(modified))
    meta = {"benchmark": "prmbench", "subset": classification}
    orig_ex = Example(
        Problem(f"{idx}:original", _text(rec, "original_question"), None,
                {**meta, "variant": "original"}),
        Solution(original),
        Gold(first_error=None, step_labels=(True,) * len(original)),
    )
    mod_ex = Example(
        Problem(f"{idx}:modified", _text(rec, "modified_question"), None,
                {**meta, "variant": "modified"}),
        Solution(modified),
        Gold(first_error=min(errors) - 1 if errors else None,
             step_labels=tuple(i not in errors for i in range(1, len(modified) + 1))),
    )
    return orig_ex, mod_ex


def _text(rec: Mapping[str, Any], field: str) -> str:
    value = rec.get(field)
    if value is None:
        raise InputError("missing (every PRMBench record has it)", field=field)
    if not isinstance(value, str) or not value.strip():
        raise InputError("must be a non-empty string", field=field)
    return value


def _steps(rec: Mapping[str, Any], field: str) -> tuple[str, ...]:
    # Blank steps are kept (stripped), not dropped: error_steps index into this list.
    steps = rec.get(field)
    if steps is None:
        raise InputError("missing (every PRMBench record has it)", field=field)
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise InputError("must be a list of strings", field=field)
    if not steps:
        raise InputError("is empty (give at least one step)", field=field)
    return tuple(s.strip() for s in steps)


def _error_steps(rec: Mapping[str, Any], n_steps: int) -> frozenset[int]:
    raw = rec.get("error_steps")
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(
        isinstance(k, int) and not isinstance(k, bool) for k in raw
    ):
        raise InputError("must be a list of 1-based step numbers", field="error_steps")
    bad = [k for k in raw if not 1 <= k <= n_steps]
    if bad:
        raise InputError(
            f"step {bad[0]} is out of range (modified_process has {n_steps} steps, "
            "numbered from 1)", field="error_steps")
    return frozenset(raw)


def converter(rec: Mapping[str, Any], line: int) -> tuple[Example, Example]:
    """``(record, line) -> (original, modified)`` for :func:`criticlab.data.hub.convert`."""
    return to_examples(rec)


def examples(spec: str, data_dir: str | os.PathLike[str] | None) -> Iterator[Example]:
    """All examples, read lazily from the local data folder or the hub."""
    origin, records = open_records(spec, SOURCE, data_dir)
    return convert(origin, records, converter)
