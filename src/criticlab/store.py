"""The store: one SQLite file (WAL) that caches every model response and keeps run results.

Every model request is keyed by a hash of (model name, messages, sampling parameters, seed,
sample index) (:func:`request_key`); :class:`~criticlab.cache.CachedModel` wraps any
:class:`LanguageModel` so that a repeated request is answered from the store without calling
the engine, and a crashed run resumes where it stopped. Each write is its own transaction, so
a kill loses at most the request in flight and never leaves half a result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from criticlab.errors import ConfigError
from criticlab.models.base import (
    GenerateConfig,
    Generation,
    Message,
)

log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    run TEXT NOT NULL,
    item TEXT NOT NULL,
    result TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (run, item)
);
"""


def request_key(
    model: str, messages: Sequence[Message], config: GenerateConfig, index: int
) -> str:
    """The cache key of sample ``index`` of a request (``config.n`` is not part of it, so a
    request for 8 samples reuses the 4 already stored)."""
    payload = {
        "model": model,
        "messages": [m.to_dict() for m in messages],
        "params": config.params(),
        "seed": config.seed,
        "index": index,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    # surrogatepass: the same bytes as UTF-8 for any text, and no error on a lone surrogate
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


# characters some JSON Lines readers also end a line at, as JSON escapes (str.translate)
LINE_BREAKS = {0x2028: "\\u2028", 0x2029: "\\u2029", 0x85: "\\u0085"}


def json_text(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON text that always encodes as UTF-8: other text is kept as it is, but a
    lone surrogate (U+D800..U+DFFF alone, which is not text: no encoding takes it, and SQLite
    refuses it) is written as its ``\\uXXXX`` escape, which ``json.loads`` reads back as the
    same string."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    # in JSON text a raw surrogate can only be inside a string, where its escape is the same
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _id(name: str) -> str | bytes:
    """A run, item or model name as SQLite stores it: as text, but one holding a lone
    surrogate (which SQLite cannot store as text) as its bytes, which :func:`_name` reads back
    exactly and which never equal any text."""
    if name.isascii() or _SURROGATE.search(name) is None:
        return name
    return name.encode("utf-8", "surrogatepass")


def _name(stored: str | bytes) -> str:
    return stored.decode("utf-8", "surrogatepass") if isinstance(stored, bytes) else stored


STORE_FILES = ("", "-wal", "-shm", "-journal")
"""The suffixes of the files SQLite keeps for a store (the database, its WAL, ...)."""
CHECK_LIMIT = 256 * 2**20
"""``Store(check=True)`` runs SQLite's ``quick_check`` on stores up to this size (measured:
about 1 ms a MiB from the page cache, 0.3 s at the limit); a larger store is checked as it
is read (every read and write error is a :class:`StoreError`)."""

# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xff)
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


class StoreError(ConfigError):
    """The store cannot be used, said in one line with what to do: ``damaged`` (its pages do
    not read back: ``criticlab repair``), full, read-only, busy."""

    def __init__(self, message: str, *, damaged: bool = False) -> None:
        super().__init__(message)
        self.damaged = damaged


class Store:
    """A SQLite store at ``path`` (created with its parent folder when missing).

    Safe to share between coroutines and threads of one process; several processes may open
    the same file (WAL mode, with a busy timeout). Every SQLite error is a
    :class:`StoreError` naming the file. ``check``: refuse at once, in one line, a store that
    is damaged (SQLite's ``quick_check``, on stores up to ``check_limit`` bytes; ``None``:
    any size) or that cannot be written; ``damaged_hint`` says what to do with a damaged one.
    """

    def __init__(self, path: str | Path, *, check: bool = False,
                 check_limit: int | None = CHECK_LIMIT,
                 damaged_hint: str | None = None) -> None:
        self.path = Path(path)
        self.damaged_hint = damaged_hint
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the folder of the store {self.path}: "
                             f"{e.strerror or e}") from e
        db = None
        try:
            db = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            if check:
                size = self.path.stat().st_size
                if check_limit is None or size <= check_limit:
                    _quick_check(db)
                db.execute("BEGIN IMMEDIATE")  # can it be written? (read-only, locked)
                db.execute("ROLLBACK")
        except (OSError, sqlite3.Error) as e:
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            raise self._error(e) from e
        self._db = db

    def _error(self, e: BaseException) -> StoreError:
        """One line for an error of this store's file."""
        path, msg = self.path, " ".join(str(e).split())  # SQLite's text may span lines
        code = getattr(e, "sqlite_errorcode", None)
        primary = None if code is None else code & 0xFF
        # a row that does not parse, SQLite's own verdict, or quick_check's
        damaged = (primary in (_CORRUPT, _NOTADB) or type(e) is sqlite3.DatabaseError
                   or (isinstance(e, ValueError) and not isinstance(e, sqlite3.Error)))
        if damaged:
            hint = self.damaged_hint or "move it aside (a new, empty store is made in its place)"
            return StoreError(f"{path} is damaged ({msg}): {hint}", damaged=True)
        if primary == _FULL:
            return StoreError(f"cannot write {path}: no space left on the device ({msg}): free "
                              "some space, then run the same command again to resume")
        if primary == _READONLY:
            return StoreError(f"cannot write {path}: it is read-only ({msg}): make it and its "
                              "folder writable, then run the same command again to resume")
        if primary == _IOERR:
            return StoreError(f"cannot write {path} ({msg}): the disk is full or failing, or "
                              "the file is larger than this process may write (ulimit -f); "
                              "then run the same command again to resume")
        if primary == _CANTOPEN or isinstance(e, OSError):
            why = ("it is a directory, not a file" if self.path.is_dir()
                   else "its folder may be read-only")
            return StoreError(f"cannot open the store {path} ({msg}): {why}")
        if primary in (_BUSY, _LOCKED):
            return StoreError(f"{path} is busy: another process holds it ({msg}); try again "
                              "when it ends")
        return StoreError(f"cannot use the store {path}: {msg}")

    @contextlib.contextmanager
    def _sql(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; SQLite's errors (and rows that do not parse)
        become a :class:`StoreError`."""
        with self._lock:
            try:
                yield self._db
            except (sqlite3.Error, ValueError) as e:
                raise self._error(e) from e

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- responses ---------------------------------------------------------------------------
    def get_response(self, key: str) -> Generation | None:
        with self._sql() as db:
            row = db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
            return None if row is None else Generation.from_dict(json.loads(row[0]))

    def put_response(
        self, key: str, model: str, request: Mapping[str, Any], generation: Generation
    ) -> None:
        with self._sql() as db:
            db.execute(
                "INSERT OR IGNORE INTO responses (key, model, request, response, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    key,
                    _id(model),
                    json_text(request),
                    json_text(generation.to_dict()),
                    time.time(),
                ),
            )

    def count_responses(self) -> int:
        with self._sql() as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    # -- run results -------------------------------------------------------------------------
    def put_result(self, run: str, item: str, result: Mapping[str, Any]) -> bool:
        """Record one item's result; the first write wins. Returns False when the item was
        already recorded (so a resumed run never writes a result twice)."""
        with self._sql() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO results (run, item, result, created) VALUES (?, ?, ?, ?)",
                (_id(run), _id(item), json_text(result), time.time()),
            )
            return cur.rowcount == 1

    def get_result(self, run: str, item: str) -> dict[str, Any] | None:
        with self._sql() as db:
            row = db.execute(
                "SELECT result FROM results WHERE run = ? AND item = ?", (_id(run), _id(item))
            ).fetchone()
            return None if row is None else dict(json.loads(row[0]))

    def results(self, run: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """All results of ``run`` in the order they were written (read at once: a damaged
        store fails here, as a :class:`StoreError`, not while they are used)."""
        with self._sql() as db:
            rows = db.execute(
                "SELECT item, result FROM results WHERE run = ? ORDER BY rowid", (_id(run),)
            ).fetchall()
            parsed = [(_name(item), dict(json.loads(blob))) for item, blob in rows]
        yield from parsed

    def result_items(self, run: str) -> set[str]:
        """The items stored under ``run`` (their results are not read)."""
        with self._sql() as db:
            return {_name(r[0]) for r in db.execute(
                "SELECT item FROM results WHERE run = ?", (_id(run),))}

    def count_results(self) -> int:
        with self._sql() as db:
            return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def items(self) -> set[str]:
        """The items stored under any run."""
        with self._sql() as db:
            return {_name(r[0]) for r in db.execute("SELECT DISTINCT item FROM results")}

    def verify(self) -> None:
        """Read every row: a :class:`StoreError` (``damaged``) unless each one reads back."""
        with self._sql() as db:
            _quick_check(db)
            for (blob,) in db.execute("SELECT result FROM results"):
                dict(json.loads(blob))
            for (blob,) in db.execute("SELECT response FROM responses"):
                Generation.from_dict(json.loads(blob))

    def put_results(self, run: str, rows: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Record many items' results in one transaction (the first write of each wins);
        returns how many were new."""
        now = time.time()
        return self.put_raw([], [(_id(run), _id(item), json_text(r), now) for item, r in rows])

    def put_raw(self, responses: Sequence[tuple[Any, ...]],
                results: Sequence[tuple[Any, ...]]) -> int:
        """Rows as the tables hold them (from :func:`salvage`), in one transaction; returns
        how many results were new."""
        with self._sql() as db:
            db.execute("BEGIN")
            try:
                db.executemany("INSERT OR IGNORE INTO responses (key, model, request, response, "
                               "created) VALUES (?, ?, ?, ?, ?)", responses)
                before = db.total_changes
                db.executemany("INSERT OR IGNORE INTO results (run, item, result, created) "
                               "VALUES (?, ?, ?, ?)", results)
                new = db.total_changes - before
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            return new


def _quick_check(db: sqlite3.Connection) -> None:
    """SQLite's ``quick_check``: a ``DatabaseError`` with its first findings on one line (a
    finding may span lines, "*** in database main ***" first)."""
    found = db.execute("PRAGMA quick_check(3)").fetchall()
    if found != [("ok",)]:
        lines = [ln.strip() for r in found for ln in str(r[0]).splitlines()
                 if ln.strip() and not ln.startswith("***")]
        raise sqlite3.DatabaseError("; ".join(lines[:2]) or "quick_check failed")


def salvage(path: str | Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every row of a (damaged) store that still reads back and parses: (responses, results),
    as the tables hold them. Rows are read in ranges of rowids; a range that fails is halved
    until the rows of the damaged pages alone are left out."""
    try:
        db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    except sqlite3.Error:
        return [], []
    try:
        db.execute("PRAGMA cell_size_check=ON")
        size = Path(path).stat().st_size
        responses = _scan(db, "responses", "key, model, request, response, created",
                          _good_response, size)
        results = _scan(db, "results", "run, item, result, created", _good_result, size)
    except (OSError, sqlite3.Error):
        return [], []
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.close()
    return responses, results


def _good_result(row: tuple[Any, ...]) -> bool:
    run, item, blob, _ = row
    return (isinstance(run, str | bytes) and isinstance(item, str | bytes)
            and isinstance(json.loads(blob), dict))


def _good_response(row: tuple[Any, ...]) -> bool:
    key, model, request, response, _ = row
    Generation.from_dict(json.loads(response))
    return (isinstance(key, str) and len(key) == 64 and isinstance(model, str | bytes)
            and isinstance(json.loads(request), dict))


def _scan(db: sqlite3.Connection, table: str, cols: str,
          good: Callable[[tuple[Any, ...]], bool], size: int) -> list[tuple[Any, ...]]:
    try:
        top = db.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []
        top = size // 16
    except sqlite3.DatabaseError:
        top = size // 16  # rowids are dense (rows are never deleted): at most one per 16 bytes
    if not top:
        return []
    sql = f"SELECT {cols} FROM {table} WHERE rowid BETWEEN ? AND ?"
    rows: list[tuple[Any, ...]] = []
    failures = 0

    def read(lo: int, hi: int) -> None:
        nonlocal failures
        try:
            rows.extend(db.execute(sql, (lo, hi)).fetchall())
            return
        except sqlite3.DatabaseError:
            failures += 1
        if lo < hi and failures < 100_000:
            mid = (lo + hi) // 2
            read(lo, mid)
            read(mid + 1, hi)

    for lo in range(1, top + 1, 512):
        read(lo, min(lo + 511, top))
    kept = []
    for row in rows:
        try:
            if good(row):
                kept.append(row)
        except (ValueError, TypeError, KeyError, AttributeError):
            pass
    return kept
