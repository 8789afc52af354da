"""Reading run files for the report: JSON objects and JSON-lines files, and structural checks
that name the first bad field, so that a malformed line becomes one
:class:`~criticlab.errors.InputError` with file, line and field."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from criticlab.errors import InputError

T = TypeVar("T")
METRICS = "metrics.json"
CONFIG = "config.json"
VERDICTS = (None, "correct", "incorrect")
STEP_VERDICTS = ("correct", "incorrect", "unknown")


def kind(value: Any) -> str:
    return "null" if value is None else {
        dict: "an object", list: "a list", str: "a string", bool: "a boolean",
        int: "a number", float: "a number",
    }.get(type(value), type(value).__name__)


def meta(metrics: Mapping[str, Any] | None, config: Mapping[str, Any], key: str) -> str:
    """A run's ``key`` (critic, model, strategy, ...): from ``metrics.json`` when it has a
    value, else from ``config.json``; "" when neither does."""
    for source in (metrics or {}, config):
        value = source.get(key)
        if value:
            return str(value)
    return ""


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` when there is no such file."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", path=str(path)) from None
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=str(path),
                         line=e.lineno) from None
    if not isinstance(value, dict):
        raise InputError(f"must be a JSON object, not {kind(value)}", path=str(path))
    return value


def read_jsonl(path: Path, parse: Callable[[Any], T], what: str) -> list[T]:
    """``parse`` applied to each non-blank line's JSON value. ``parse`` raises ``InputError``
    (with a field) for a bad value; it is re-raised with the file and line."""
    out: list[T] = []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                d = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise InputError("contains bytes that are not valid UTF-8", path=str(path),
                                 line=lineno) from None
            except json.JSONDecodeError as e:
                raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=str(path),
                                 line=lineno) from None
            try:
                out.append(parse(d))
            except InputError as e:
                raise InputError(e.message, path=str(path), line=lineno, field=e.field) from None
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(f"not {what}: {e}", path=str(path), line=lineno) from None
    return out


def need(d: Mapping[str, Any], key: str, where: str, types: tuple[type, ...],
         what: str, *, optional: bool = False) -> Any:
    """``d[key]``, checked to be one of ``types`` (a bool is not a number); ``optional``: a
    missing key or null gives ``None``."""
    name = f"{where}.{key}" if where else key
    if key not in d:
        if optional:
            return None
        raise InputError("missing", field=name)
    value = d[key]
    if value is None and optional:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise InputError(f"must be {what}, not {kind(value)}", field=name)
    return value


def need_object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object, not {kind(value)}")
    return value


def check_strings(values: Iterable[Any], where: str) -> None:
    for i, s in enumerate(values):
        if not isinstance(s, str):
            raise InputError(f"must be a string, not {kind(s)}", field=f"{where}[{i}]")


def check_problem(d: Mapping[str, Any], where: str) -> None:
    problem = need(d, "problem", where, (dict,), "an object")
    at = f"{where}.problem" if where else "problem"
    need(problem, "id", at, (str, int), "a string")
    need(problem, "question", at, (str,), "a string")
    need(problem, "reference_answer", at, (str,), "a string", optional=True)
    need(problem, "metadata", at, (dict,), "an object", optional=True)


def check_solution(sol: Mapping[str, Any], where: str) -> None:
    check_strings(need(sol, "steps", where, (list,), "a list of strings"), f"{where}.steps")
    need(sol, "final_answer", where, (str,), "a string", optional=True)
    need(sol, "source", where, (str,), "a string", optional=True)


def check_usage(d: Mapping[str, Any], where: str, *, optional: bool = True) -> None:
    usage = need(d, "usage", where, (dict,), "an object", optional=optional)
    at = f"{where}.usage" if where else "usage"
    for key in ("prompt_tokens", "completion_tokens", "calls", "cached"):
        need(usage or {}, key, at, (int,), "an integer", optional=True)


def check_critique(crit: Mapping[str, Any], where: str) -> None:
    need(crit, "first_error", where, (int,), "an integer", optional=True)
    if crit.get("verdict") not in VERDICTS:
        raise InputError(f"must be 'correct', 'incorrect' or null, not {crit.get('verdict')!r}",
                         field=f"{where}.verdict")
    need(crit, "feedback", where, (str,), "a string", optional=True)
    need(crit, "raw", where, (str,), "a string", optional=True)
    need(crit, "critic", where, (str,), "a string", optional=True)
    need(crit, "score", where, (int, float), "a number", optional=True)
    for i, sv in enumerate(need(crit, "steps", where, (list,), "a list", optional=True) or ()):
        at = f"{where}.steps[{i}]"
        if not isinstance(sv, dict):
            raise InputError(f"must be an object, not {kind(sv)}", field=at)
        need(sv, "index", at, (int,), "an integer")
        if sv.get("verdict") not in STEP_VERDICTS:
            raise InputError("must be 'correct', 'incorrect' or 'unknown'", field=f"{at}.verdict")
        need(sv, "explanation", at, (str,), "a string", optional=True)
    check_usage(crit, where)


def check_numbers(m: Mapping[str, Any], keys: Iterable[str], path: str, where: str = "") -> None:
    """Each of ``keys`` in ``m`` is a number or null (or absent)."""
    for key in keys:
        value = m.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InputError(f"must be a number or null, not {kind(value)}", path=path,
                             field=f"{where}{key}")


def section(m: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    """``m[key]``: an object or null."""
    value = m.get(key)
    if value is not None and not isinstance(value, dict):
        raise InputError(f"must be an object or null, not {kind(value)}", path=path, field=key)
    return value
