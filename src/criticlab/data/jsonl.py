"""criticlab's own record format, as JSON (one object or an array) or JSONL, from a file or
stdin (``-``).

A record: ``problem`` (or ``question``), and either ``steps`` (a list of strings) or
``solution`` (free text, split by :func:`criticlab.steps.split_steps`); optional ``id``,
``reference_answer``, ``final_answer``, and gold labels ``label`` (the 0-based first wrong
step, -1 when all are correct, as in ProcessBench) and ``final_answer_correct``. A record
with neither ``steps`` nor ``solution`` nor a label is a bare problem (``Example.solution``
is ``None``), for jobs that write the solutions (``refine --draft solve``, ``select``).
In a record with ``tests`` (a program, for the code critic), ``solution`` is also kept
exactly, as ``Solution.text``: splitting strips its indentation.

Reading never stops at a bad record: each record comes back as an ``Example`` or as an
``InputError`` naming the file, line and field, so the good records can still be used.
Records end at ``\\n`` (``\\r\\n`` too; U+2028, U+2029 and U+0085 are text), and a UTF-8
byte order mark is skipped. Valid JSON is still refused, one error per record, when it is
nested deeper than :data:`MAX_DEPTH` levels, holds an integer longer than Python converts
(``sys.get_int_max_str_digits()``, 4,300 digits by default) or a lone surrogate (U+D800 to
U+DFFF alone, as from a ``\\ud800`` escape: not text, and nothing could print or store it).
A UTF-16 or UTF-32 file, one in which no line is JSON, or content after a JSON array's
closing ``]`` is one error, naming its line.
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

MAX_DEPTH = 100
"""The deepest nesting a record may have, the record itself being level 1. Deeper JSON is
refused (one located error), so that neither reading nor writing a record recurses far."""

# record fields kept in Problem.metadata: provenance, and what some critics read (the code
# critic's tests and entry point, the self-evaluation's other sampled answers)
METADATA_FIELDS = ("generator", "source", "subset", "tests", "entry_point", "other_answers")

_SURROGATE = re.compile("[\ud800-\udfff]")
# bytes that are not UTF-8 become U+DC80..U+DCFF in the text (surrogateescape); a \uXXXX
# escape may make a lone surrogate too: only a record holding either is searched for them
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_WS = re.compile(r"[ \t\r\n]*")  # JSON's whitespace (not U+2028, U+0085, ...)
_BETWEEN = re.compile(r"[ \t\r\n,]*")  # between the records of an array
# what the nesting of a too-deep value is measured with: strings (skipped) and punctuation
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]', re.S)
_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"),
         (b"\xfe\xff", "UTF-16"), (b"\xff\xfe", "UTF-16"))
# without a byte order mark, ASCII text in UTF-16/32 shows its NULs in the first 4 bytes
_NULS = {(1, 1, 1, 0): "UTF-32BE", (0, 1, 1, 1): "UTF-32LE",
         (1, 0, 1, 0): "UTF-16BE", (0, 1, 0, 1): "UTF-16LE"}
_SHAPES = "a JSON array, one JSON object, or JSONL"


def read_text(path: str) -> str:
    """The file's text (``-`` = stdin), without a UTF-8 byte order mark. Bytes that are not
    UTF-8 are kept as lone surrogates so that only the records containing them are rejected;
    a UTF-16 or UTF-32 file raises ``InputError``."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", path=path) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path=path) from None
    wide = _wide_encoding(data)
    if wide is not None:
        raise InputError(f"the file is {wide} text, not UTF-8: save it as UTF-8 "
                         f"(e.g. iconv -f {wide} -t UTF-8)", path=path, line=1)
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def _wide_encoding(data: bytes) -> str | None:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    head = data[:4]
    if len(head) < 4 or 0 not in head:
        return None
    return _NULS.get((int(head[0] == 0), int(head[1] == 0), int(head[2] == 0), int(head[3] == 0)))


def iter_raw(path: str, text: str) -> Iterator[tuple[int, Any | InputError]]:
    """(line, parsed JSON value or error) per record, for a JSON array, one JSON object, or
    JSONL (lines end at ``\\n`` only; a ``.jsonl`` file is always read as JSONL). A syntax
    error in a JSON array ends the array but keeps the records before it; so does content
    after its closing ``]``, which is an error too.
    A record nested deeper than :data:`MAX_DEPTH`, holding an integer too long for Python
    (``sys.get_int_max_str_digits()``) or a lone surrogate is an ``InputError`` naming the
    field. A file none of whose lines is JSON is one error."""
    start = _skip(_WS, text, 0)
    if start == len(text):
        return
    raw = not text.isascii() and _has_surrogates(text)
    if text[start] == "[" and not path.endswith(".jsonl"):  # a .jsonl file is JSON Lines
        yield from _iter_array(path, text, start, raw)
        return
    if text[start] == "{" and not path.endswith(".jsonl"):
        whole = _whole_object(path, text, start, raw)
        if whole is not None:
            yield whole
            return
    yield from _iter_lines(path, text, text[start] in "{[", raw)


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _whole_object(path: str, text: str, start: int, raw: bool,
                  ) -> tuple[int, Any | InputError] | None:
    """The file as one JSON object, or its error; None when it is JSONL instead (its first
    line is a record of its own)."""
    error: json.JSONDecodeError | None = None
    line = text.count("\n", 0, start) + 1
    try:
        value, end = _decode(text, start, raw)
        if end is not None:
            rest = _skip(_WS, text, end)
            if rest == len(text):
                return line, _locate(value, path, line)
            error = json.JSONDecodeError("Extra data", text, rest)
    except json.JSONDecodeError as e:
        error = e
    newline = text.find("\n", start)
    try:
        _decode_line(text[start:] if newline < 0 else text[start:newline], raw)
        return None  # the first line is a record of its own: JSONL
    except json.JSONDecodeError:
        pass
    if error is None:  # too deep, and never closed
        return line, _locate(value, path, line)
    return error.lineno, InputError(f"invalid JSON: {error.msg} (column {error.colno})",
                                    path=path, line=error.lineno)


def _iter_lines(path: str, text: str, json_like: bool, raw: bool,
                ) -> Iterator[tuple[int, Any | InputError]]:
    """JSONL. While no line has been JSON, and the file does not start like JSON, errors wait:
    a file none of whose lines is JSON is one error, not one per line."""
    waiting: list[tuple[int, InputError]] | None = None if json_like else []
    for lineno, line in enumerate(text.split("\n"), start=1):
        try:
            value = _decode_line(line, raw)
        except json.JSONDecodeError as e:
            error = InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=path,
                               line=lineno)
            if waiting is None:
                yield lineno, error
            else:
                waiting.append((lineno, error))
            continue
        if value is _BLANK:
            continue
        if waiting:
            yield from waiting
        waiting = None
        yield lineno, _locate(value, path, lineno)
    if waiting:
        yield _not_json(path, text, *waiting[0])


_BLANK = object()


def _decode_line(line: str, raw: bool) -> Any:
    """One JSONL line's value (``_BLANK`` for a blank line), or an ``InputError`` it is
    refused with; raises ``JSONDecodeError``."""
    start = _skip(_WS, line, 0)
    if start == len(line):
        return _BLANK
    value, end = _decode(line, start, raw)
    if end is not None and _skip(_WS, line, end) != len(line):
        raise json.JSONDecodeError("Extra data", line, _skip(_WS, line, end))
    return value


def _skip(pattern: re.Pattern[str], s: str, pos: int) -> int:
    """Where the run of ``pattern`` (whitespace, commas) at ``s[pos]`` ends."""
    m = pattern.match(s, pos)
    return pos if m is None else m.end()


def _not_json(path: str, text: str, line: int, first: InputError) -> tuple[int, InputError]:
    bad = _UNDECODABLE.search(text)
    if bad is None:
        return line, InputError(f"{first.message}; no line of the file is JSON (criticlab "
                                f"reads {_SHAPES})", path=path, line=line)
    line = text.count("\n", 0, bad.start()) + 1
    column = bad.start() - text.rfind("\n", 0, bad.start())
    byte = ord(bad.group()) - 0xDC00
    return line, InputError(f"not UTF-8 text (byte 0x{byte:02x}, column {column}, cannot be "
                            f"decoded): criticlab reads {_SHAPES}, in UTF-8", path=path,
                            line=line)


def _iter_array(path: str, text: str, start: int, raw: bool,
                ) -> Iterator[tuple[int, Any | InputError]]:
    n = len(text)
    line, counted = text.count("\n", 0, start) + 1, start

    def line_at(pos: int) -> int:  # positions only grow: each newline is counted once
        nonlocal line, counted
        line += text.count("\n", counted, pos)
        counted = pos
        return line

    pos = start + 1
    while True:
        pos = _skip(_BETWEEN, text, pos)
        if pos >= n:
            yield line_at(pos), InputError("invalid JSON: the array is never closed",
                                           path=path, line=line_at(pos))
            return
        if text[pos] == "]":
            rest = _skip(_WS, text, pos + 1)
            if rest < n:
                yield line_at(rest), InputError(
                    "unexpected content after the JSON array's closing ']': a file holds one "
                    "JSON array, one JSON object, or JSONL; the rest of the file is not read",
                    path=path, line=line_at(rest))
            return
        try:
            value, end = _decode(text, pos, raw)
        except json.JSONDecodeError as e:
            yield e.lineno, InputError(f"invalid JSON: {e.msg} (column {e.colno})",
                                       path=path, line=e.lineno)
            return
        yield line_at(pos), _locate(value, path, line_at(pos))
        if end is None:  # too deep, and never closed
            return
        pos = end


def _locate(value: Any, path: str, line: int) -> Any:
    if isinstance(value, InputError):
        value.path, value.line = path, line
    return value


_DECODER = json.JSONDecoder()


class _LongInt:
    """An integer of more digits than Python converts (``sys.get_int_max_str_digits()``)."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_int(s: str) -> int | _LongInt:
    try:
        return int(s)
    except ValueError:
        return _LongInt(len(s.lstrip("-")))


_LONG_INT_DECODER = json.JSONDecoder(parse_int=_parse_int)


def _decode(s: str, pos: int, raw: bool) -> tuple[Any, int | None]:
    """The JSON value at ``s[pos]`` and where it ends. A value JSON allows but criticlab
    refuses comes back as an ``InputError`` naming the field (not located), with its end when
    it is known. Raises ``JSONDecodeError`` on a syntax error. ``raw``: ``s`` holds
    surrogates (bytes that were not UTF-8) somewhere."""
    try:
        value, end = _DECODER.raw_decode(s, pos)
    except RecursionError:
        return _too_deep(s, pos)
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer too long to convert: decode again to name its field
        try:
            value, end = _LONG_INT_DECODER.raw_decode(s, pos)
        except RecursionError:
            return _too_deep(s, pos)
        return _first_problem(value, undecodable=raw and _has(_UNDECODABLE, s, pos, end)) \
            or value, end
    if (s.count("[", pos, end) + s.count("{", pos, end) > MAX_DEPTH  # maybe too deep
            or _has(_ESCAPED_SURROGATE, s, pos, end) or (raw and _has(_SURROGATE, s, pos, end))):
        return _first_problem(value, undecodable=raw and _has(_UNDECODABLE, s, pos, end)) \
            or value, end
    return value, end


def _has(pattern: re.Pattern[str], s: str, pos: int, end: int) -> bool:
    return pattern.search(s, pos, end) is not None


def _too_deep(s: str, pos: int) -> tuple[InputError, int | None]:
    """The error for a value too deep for the decoder to recurse into, naming the record's
    field it is in, and the end of the value (None when it is never closed)."""
    depth, record, expect_key = 0, False, False
    key: str | None = None
    field: str | None = None
    for m in _TOKEN.finditer(s, pos):
        tok = m.group()
        if tok in "[{":
            if depth == 0:
                record = expect_key = tok == "{"
            depth += 1
            if depth == MAX_DEPTH + 1 and field is None:
                field = key
        elif tok in "]}":
            depth -= 1
            if depth <= 0:
                return _too_deep_error(field), m.end()
        elif depth == 1 and record:
            if tok == ",":
                expect_key = True
            elif tok[0] == '"' and expect_key:
                try:
                    key = _printable(json.loads(tok))
                except ValueError:
                    key = _printable(tok[1:-1])
                expect_key = False
    return _too_deep_error(field), None


def _too_deep_error(field: str | None) -> InputError:
    return InputError(f"nested deeper than the limit of {MAX_DEPTH} levels", field=field)


def _first_problem(value: Any, *, undecodable: bool) -> InputError | None:
    """The first thing in a parsed record criticlab refuses: nesting deeper than
    :data:`MAX_DEPTH`, an integer too long to convert, a lone surrogate in a string or key.
    ``undecodable``: U+DC80..U+DCFF came from bytes that are not UTF-8."""
    return _find(value, "", 0, None, undecodable)


def _find(value: Any, field: str, depth: int, top: str | None,
          undecodable: bool) -> InputError | None:
    if isinstance(value, str):
        m = _SURROGATE.search(value)
        return None if m is None else _surrogate_error(m.group(), field, undecodable)
    if isinstance(value, _LongInt):
        return InputError(f"an integer of {value.digits} digits, over the limit of "
                          f"{sys.get_int_max_str_digits()} digits (give it as a string)",
                          field=field or None)
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return _too_deep_error(top)
        for k, v in value.items():
            key = str(k)
            m = _SURROGATE.search(key)
            if m is not None:
                bad = _surrogate_error(m.group(), "", undecodable)
                return InputError(f"a key ({_printable(key)}) {bad.message}",
                                  field=field or None)
            found = _find(v, f"{field}.{key}" if field else key, depth + 1,
                          key if depth == 0 else top, undecodable)
            if found is not None:
                return found
    elif isinstance(value, list):
        if depth >= MAX_DEPTH:
            return _too_deep_error(top)
        for i, v in enumerate(value):
            found = _find(v, f"{field}[{i}]", depth + 1, top, undecodable)
            if found is not None:
                return found
    return None


def _surrogate_error(char: str, field: str, undecodable: bool) -> InputError:
    if undecodable and "\udc80" <= char <= "\udcff":
        return InputError("contains bytes that are not valid UTF-8", field=field or None)
    return InputError(f"contains a lone surrogate \\u{ord(char):04x}, which is not text",
                      field=field or None)


def _printable(s: str) -> str:
    """``s`` with each lone surrogate written as its escape, so that it can be printed."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def read_examples(path: str, *, need_solution: bool = False
                  ) -> Iterator[Example | InputError]:
    """Examples from ``path``, with an ``InputError`` in place of each bad record (with
    ``need_solution``, a bare problem is one: there is nothing to critique). Raises
    ``InputError`` only when the file itself cannot be read."""
    text = read_text(path)
    name = "stdin" if path == "-" else Path(path).name
    count = 0
    for lineno, value in iter_raw(path, text):
        count += 1
        if isinstance(value, InputError):
            yield value
            continue
        try:  # iter_raw has refused what _check_utf8 looks for
            ex = _to_example(value, f"{name}:{lineno}")
            if need_solution and ex.solution is None:
                raise InputError("no solution to critique (give 'steps' or 'solution')",
                                 field="steps")
            yield ex
        except InputError as e:
            e.path, e.line = path, lineno
            yield e
    if count == 0:
        empty = "the array is empty" if text.strip(" \t\r\n") else "the file is empty"
        yield InputError(f"no records ({empty})", path=path)


def to_example(rec: Any, *, default_id: str) -> Example:
    """One record -> Example; raises ``InputError`` naming the bad field (no location)."""
    if isinstance(rec, Mapping):
        _check_utf8(rec)
    return _to_example(rec, default_id)


def _to_example(rec: Any, default_id: str) -> Example:
    if not isinstance(rec, Mapping):
        raise InputError(f"a record must be a JSON object, not {type(rec).__name__}")
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
    text = rec["solution"] if "steps" not in rec and "tests" in rec else None
    solution = Solution(steps, None if final is None else str(final), text=text)
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
    if label == -1:  # every step is correct: said by the step labels, so it counts as a label
        return Gold(None, (True,) * n_steps, fac)
    return Gold(label, None, fac)


def _check_utf8(value: Any, field: str = "") -> None:
    """Raise ``InputError`` naming the field of the first string (or key) in ``value`` that
    is not text: bytes that were not UTF-8 (U+DC80..U+DCFF) or another lone surrogate; or of
    nesting deeper than :data:`MAX_DEPTH`. For records that did not come through
    :func:`iter_raw` (the hub's rows), which refuses these already."""
    found = _find(value, field, 0, field or None, True)
    if found is not None:
        raise found
