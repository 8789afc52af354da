"""The wire between the code critic's harness and the solution's process (see
:mod:`criticlab.critics.code_harness`, of which this is the first part: the three files are
one program in the sandbox). Frames, and values as JSON: plain values cross as themselves,
any other object as a handle.
"""

import json
import os
import traceback
from typing import Any

_CAP = 16 << 20  # bytes: the largest frame either process accepts from the other
_DEPTH = 100  # nesting of a value that crosses as a plain value
_TEXT = 300  # characters kept of an error message or a type name
_KINDS: dict[str, Any] = {"t": tuple, "s": set, "fs": frozenset}
# the binary operators a handle forwards (with their reflected and in-place forms)
_BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "lshift", "rshift", "and", "or",
           "xor", "matmul")


# --- frames -----------------------------------------------------------------------------------


def _read_exact(fd: int, n: int) -> bytes:
    """Exactly ``n`` bytes, unbuffered: nothing past them is read (stdin's second frame must
    stay in the pipe until the solution's process is gone from it)."""
    parts, left = [], n
    while left:
        piece = os.read(fd, min(left, 1 << 20))
        if not piece:
            raise EOFError
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)


def _read_frame(fd: int) -> bytes:
    size = _read_exact(fd, 10)
    if not size.isdigit() or int(size) > _CAP:
        raise ValueError("bad frame")
    return _read_exact(fd, int(size))


def _send(fd: int, value: Any) -> None:
    data = json.dumps(value, separators=(",", ":")).encode()
    data = b"%010d" % len(data) + data
    while data:
        data = data[os.write(fd, data):]


def _recv(fd: int) -> Any:
    return json.loads(_read_frame(fd))


# --- values -----------------------------------------------------------------------------------


def _encode(value: Any, ref: Any, depth: int = 0) -> Any:
    """A value as JSON: plain values as themselves, anything else through ``ref`` (a handle,
    or a TypeError on the harness's side). Subclasses of the plain types cross as their base
    value (a Counter as a dict, a namedtuple as a tuple, an IntEnum as an int)."""
    if depth > _DEPTH:
        return ref(value)
    kind, deeper = type(value), depth + 1
    if value is None or kind is bool or kind is str:
        return value
    if isinstance(value, int):
        return int.__int__(value) if int.bit_length(value) < 12_000 else ref(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list):
        return [_encode(v, ref, deeper) for v in list.__iter__(value)]
    if isinstance(value, complex):
        return {"c": [complex.real.__get__(value), complex.imag.__get__(value)]}
    if isinstance(value, bytes | bytearray):
        return {"b" if isinstance(value, bytes) else "ba": bytes(value).hex()}
    if isinstance(value, range):
        return {"r": [value.start, value.stop, value.step]}
    if isinstance(value, tuple | set | frozenset | dict):
        return _encode_container(value, ref, deeper)
    name = kind.__module__ if isinstance(kind.__module__, str) else ""
    if name == "fractions" and kind.__name__ == "Fraction":
        return {"F": [int(value.numerator), int(value.denominator)]}
    if name in ("decimal", "_decimal", "_pydecimal") and kind.__name__ == "Decimal":
        return {"D": str(value)}
    return ref(value)


def _encode_container(value: Any, ref: Any, depth: int) -> Any:
    if isinstance(value, dict):
        pairs = [[_encode(k, ref, depth), _encode(v, ref, depth)]
                 for k, v in dict.items(value)]
        return ref(value) if any(isinstance(k, dict) and "h" in k for k, _ in pairs) else {
            "d": pairs}
    if isinstance(value, tuple):
        return {"t": [_encode(v, ref, depth) for v in tuple.__iter__(value)]}
    items = [_encode(v, ref, depth) for v in (set.__iter__(value) if isinstance(value, set)
                                              else frozenset.__iter__(value))]
    if any(isinstance(v, dict) and "h" in v for v in items):
        return ref(value)  # its elements would need hashing on the other side
    return {"s" if isinstance(value, set) else "fs": items}


def _decode(data: Any, deref: Any, depth: int = 0) -> Any:
    """The inverse of :func:`_encode`, with ``deref`` for handles. Only the plain types come
    out of it; anything unexpected is a ValueError."""
    if depth > _DEPTH + 2:
        raise ValueError("nested too deep")
    kind, deeper = type(data), depth + 1
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        return [_decode(v, deref, deeper) for v in data]
    if kind is not dict or len(data) != 1:
        raise ValueError("not a value")
    (tag, body), = data.items()
    if tag == "h":
        return deref(body)
    if tag in _KINDS and type(body) is list:
        return _KINDS[tag](_decode(v, deref, deeper) for v in body)
    if tag == "d" and type(body) is list:
        return {_decode(k, deref, deeper): _decode(v, deref, deeper) for k, v in body}
    if tag in ("b", "ba") and type(body) is str:
        return (bytes if tag == "b" else bytearray).fromhex(body)
    if tag in ("c", "r", "F") and type(body) is list and all(type(x) in (int, float)
                                                            for x in body):
        return complex(*body) if tag == "c" else range(*map(int, body)) if tag == "r" else \
            __import__("fractions").Fraction(*map(int, body))
    if tag == "D" and type(body) is str:
        return __import__("decimal").Decimal(body)
    raise ValueError("not a value")


def _describe(exc: BaseException) -> dict[str, Any]:
    """An exception of the solution's: its one-line text, type name and line in the code."""
    try:
        frames = traceback.extract_tb(exc.__traceback__)
        lines = [f.lineno for f in frames if f.filename == "solution.py"]
        text = traceback.format_exception_only(type(exc), exc)[-1].strip()
        kind = type(exc).__name__
    except BaseException:
        lines, text, kind = [], "an exception that could not be shown", "Exception"
    return {"error": str(text)[:_TEXT], "type": str(kind)[:_TEXT],
            "line": lines[-1] if lines else None}


