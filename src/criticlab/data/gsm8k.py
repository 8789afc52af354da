"""GSM8K (Cobbe et al., 2021): grade-school word problems with worked reference solutions.

A record (the local JSONL and the hub rows of ``openai/gsm8k``, config ``main``, alike):
``{"question", "answer"}``, where the answer is one step per line, with calculator
annotations ``<<expression=value>>`` inside the steps, and the final answer on the last line
after ``#### ``. An Example holds the reference solution as its steps (annotations kept,
blank lines dropped), the final answer with thousands separators removed as both
``reference_answer`` and ``final_answer``, and ``Gold(first_error=None,
final_answer_correct=True)``: the reference solutions are taken as correct. The id is
``gsm8k-SPLIT-LINE`` (1-based line of the JSONL file, or row of the hub split; the two
agree).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from criticlab.data.hub import Source, convert, open_records
from criticlab.data.jsonl import _check_utf8
from criticlab.errors import InputError
from criticlab.types import Example, Gold, Problem, Solution

SPLITS: tuple[str, ...] = ("test", "train")
HUB_NAME = "openai/gsm8k"
HUB_CONFIG = "main"
_MARK = "####"


def source(split: str) -> Source:
    return Source(rel=f"gsm8k/{split}.jsonl", hub=HUB_NAME, split=split, config=HUB_CONFIG)


def parse_answer(answer: str) -> tuple[tuple[str, ...], str]:
    """``(steps, final_answer)`` of a GSM8K answer; raises ``InputError`` (field
    ``answer``) when there is no ``####`` line, no step before it, or no answer after it."""
    head, sep, tail = answer.rpartition(_MARK)
    if not sep:
        raise InputError("has no '#### ' line with the final answer", field="answer")
    final = tail.strip().replace(",", "")
    if not final:
        raise InputError("nothing after '####'", field="answer")
    steps = tuple(s.strip() for s in head.splitlines() if s.strip())
    if not steps:
        raise InputError("no solution steps before '####'", field="answer")
    return steps, final


def to_example(rec: Mapping[str, Any], *, split: str, line: int) -> Example:
    """One GSM8K record -> Example; raises ``InputError`` naming the bad field (the caller
    adds the file and line)."""
    _check_utf8(rec)
    for key in ("question", "answer"):
        value = rec.get(key)
        if value is None:
            raise InputError("missing (every GSM8K record has it)", field=key)
        if not isinstance(value, str) or not value.strip():
            raise InputError("must be a non-empty string", field=key)
    steps, final = parse_answer(rec["answer"])
    problem = Problem(f"gsm8k-{split}-{line}", rec["question"], final,
                      {"benchmark": "gsm8k", "subset": split})
    solution = Solution(steps, final, source="reference")
    return Example(problem, solution, Gold(first_error=None, final_answer_correct=True))


def converter(split: str) -> Callable[[Mapping[str, Any], int], tuple[Example]]:
    """``(record, line) -> (Example,)`` for :func:`criticlab.data.hub.convert`."""
    return lambda rec, line: (to_example(rec, split=split, line=line),)


def examples(spec: str, split: str, data_dir: str | os.PathLike[str] | None,
             ) -> Iterator[Example]:
    """The examples of one split, read lazily from the local data folder or the hub."""
    origin, records = open_records(spec, source(split), data_dir)
    return convert(origin, records, converter(split))
