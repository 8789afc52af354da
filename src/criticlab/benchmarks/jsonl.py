"""criticlab's own record format, as JSON (one object or an array) or JSONL, from a file or
stdin (``-``).

A record: ``problem`` (or ``question``), and either ``steps`` (a list of strings) or
``solution`` (free text, split by :func:`criticlab.steps.split_steps`); optional ``id``,
``reference_answer``, ``final_answer``, and gold labels ``label`` (the 0-based first wrong
step, -1 when all are correct, as in ProcessBench) and ``final_answer_correct``. A record
with neither ``steps`` nor ``solution`` nor a label is a bare problem (``Example.solution``
is ``None``), for jobs that write the solutions (``refine --draft solve``, ``select``).

Reading never stops at a bad record: each record comes back as an ``Example`` or as an
``InputError`` naming the file, line and field, so the good records can still be used.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from criticlab.errors import InputError
from criticlab.steps import split_steps
from criticlab.types import Example, Gold, Problem, Solution

_SURROGATE = re.compile(r"[\udc80-\udcff]")
# record fields kept in Problem.metadata: provenance, and what some critics read (the code
# critic's tests and entry point, the self-evaluation's other sampled answers)
METADATA_FIELDS = ("generator", "source", "subset", "tests", "entry_point", "other_answers")


def read_text(path: str) -> str:
    """The file's text (``-`` = stdin). Bytes that are not UTF-8 are kept as lone surrogates
    so that only the records containing them are rejected."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", path=path) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path=path) from None
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def iter_raw(path: str, text: str) -> Iterator[tuple[int, Any | InputError]]:
    """(line, parsed JSON value or error) per record, for a JSON array, one JSON object, or
    JSONL. A syntax error in a JSON array ends the array but keeps the records before it."""
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    if stripped.startswith("["):
        yield from _iter_array(path, text, offset + 1)
        return
    if stripped.startswith("{") and not path.endswith(".jsonl"):
        try:
            yield _line(text, offset), json.loads(text)
            return
        except json.JSONDecodeError as whole:
            first = stripped.split("\n", 1)[0]
            try:
                json.loads(first)  # the first line is a record of its own: JSONL
            except json.JSONDecodeError:
                yield whole.lineno, InputError(
                    f"invalid JSON: {whole.msg} (column {whole.colno})", path=path,
                    line=whole.lineno)
                return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            yield lineno, InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=path,
                                     line=lineno)


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _iter_array(path: str, text: str, pos: int) -> Iterator[tuple[int, Any | InputError]]:
    dec = json.JSONDecoder()
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n:
            yield _line(text, pos), InputError("invalid JSON: the array is never closed",
                                               path=path, line=_line(text, pos))
            return
        if text[pos] == "]":
            return
        try:
            value, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            yield e.lineno, InputError(f"invalid JSON: {e.msg} (column {e.colno})",
                                       path=path, line=e.lineno)
            return
        yield _line(text, pos), value
        pos = end


def read_examples(path: str) -> Iterator[Example | InputError]:
    """Examples from ``path``, with an ``InputError`` in place of each bad record. Raises
    ``InputError`` only when the file itself cannot be read."""
    text = read_text(path)
    name = "stdin" if path == "-" else Path(path).name
    count = 0
    for lineno, value in iter_raw(path, text):
        count += 1
        if isinstance(value, InputError):
            yield value
            continue
        try:
            yield to_example(value, default_id=f"{name}:{lineno}")
        except InputError as e:
            e.path, e.line = path, lineno
            yield e
    if count == 0:
        yield InputError("no records (the file is empty)", path=path)


def to_example(rec: Any, *, default_id: str) -> Example:
    """One record -> Example; raises ``InputError`` naming the bad field (no location)."""
    if not isinstance(rec, Mapping):
        raise InputError(f"a record must be a JSON object, not {type(rec).__name__}")
    _check_utf8(rec)
    question = rec.get("problem", rec.get("question"))
    if question is None:
        raise InputError("missing (each record needs the problem text)", field="problem")
    if not isinstance(question, str) or not question.strip():
        raise InputError("must be a non-empty string", field="problem")
    labelled = any(k in rec for k in ("label", "final_answer", "final_answer_correct"))
    # a bare problem (to solve, refine or select) needs no solution; a labelled one does
    steps = _steps(rec) if labelled or "steps" in rec or "solution" in rec else None
    ref = rec.get("reference_answer")
    if ref is not None and not isinstance(ref, str | int | float):
        raise InputError("must be a string or a number", field="reference_answer")
    rid = rec.get("id", default_id)
    if not isinstance(rid, str | int):
        raise InputError("must be a string or an integer", field="id")
    images = rec.get("images", [])
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise InputError("must be a list of paths or URLs", field="images")
    problem = Problem(str(rid), question, None if ref is None else str(ref),
                      {k: v for k, v in rec.items() if k in METADATA_FIELDS}, tuple(images))
    if steps is None:
        return Example(problem)
    final = rec.get("final_answer")
    solution = Solution(steps, None if final is None else str(final))
    return Example(problem, solution, _gold(rec, len(steps)))


def _steps(rec: Mapping[str, Any]) -> tuple[str, ...]:
    if "steps" in rec:
        steps = rec["steps"]
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise InputError("must be a list of strings", field="steps")
        if not steps:
            raise InputError("is empty (give at least one step)", field="steps")
        if any(not s.strip() for s in steps):
            bad = next(i for i, s in enumerate(steps) if not s.strip())
            raise InputError(f"step {bad} is blank", field="steps")
        return tuple(s.strip() for s in steps)
    if "solution" in rec:
        sol = rec["solution"]
        if not isinstance(sol, str):
            raise InputError("must be a string (or give 'steps' as a list)", field="solution")
        steps_t = split_steps(sol)
        if not steps_t:
            raise InputError("is empty", field="solution")
        return steps_t
    raise InputError("missing: give 'steps' (a list) or 'solution' (text)", field="steps")


def _gold(rec: Mapping[str, Any], n_steps: int) -> Gold | None:
    label = rec.get("label")
    fac = rec.get("final_answer_correct")
    if label is None and fac is None:
        return None
    if label is not None and (
        not isinstance(label, int) or isinstance(label, bool) or not -1 <= label < n_steps
    ):
        raise InputError(f"must be an integer from -1 to {n_steps - 1}", field="label")
    if fac is not None and not isinstance(fac, bool):
        raise InputError("must be true or false", field="final_answer_correct")
    return Gold(None if label in (None, -1) else label, None, fac)


def _check_utf8(value: Any, field: str = "") -> None:
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise InputError("contains bytes that are not valid UTF-8", field=field or None)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _check_utf8(v, str(k) if not field else f"{field}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_utf8(v, f"{field}[{i}]")
