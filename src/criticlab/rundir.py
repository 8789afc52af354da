"""What guards a run directory (``--out``): it is a directory we can write, its files are
files, one process runs it at a time (:class:`RunDir`, a lock held for the job's life), every
file is replaced atomically (:func:`write_jsonl`, :func:`write_json`), and an error of the
file system (read-only, full, a file where a directory must be) is one line naming the path
and what to do (:func:`file_error`), never a traceback.

A damaged store is rebuilt by :func:`repair_run` (``criticlab repair RUN_DIR``): the rows it
can still read, plus the finished items of the run's output file (eval's ``results.jsonl``),
go into a fresh store; the damaged one is kept aside."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from criticlab.errors import ConfigError
from criticlab.store import LINE_BREAKS, STORE_FILES, Store, StoreError, json_text, salvage

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs are not locked
    fcntl = None  # type: ignore[assignment]

LOCK = "run.lock"
STORE = "store.sqlite"
RUN_FILES = ("config.json", STORE, "metrics.json", "results.jsonl", "trajectories.jsonl",
             "selections.jsonl", "labels.jsonl", "critiques.jsonl", LOCK)
"""The files a job keeps in its run directory: each must be a file (or absent)."""

_WHY = {
    errno.ENOSPC: "no space left on the device: free some space, then run the same command "
                  "again to resume",
    errno.EDQUOT: "the disk quota is exceeded: free some space, then run the same command "
                  "again to resume",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f): raise the "
                 "limit, then run the same command again to resume",
    errno.EROFS: "read-only file system: choose a writable --out, or make it writable and run "
                 "the same command again to resume",
    errno.EACCES: "permission denied (read-only): make it writable, or choose another --out",
    errno.EPERM: "permission denied (read-only): make it writable, or choose another --out",
    errno.EISDIR: "a directory is in the way of a file: move it away, then run the same "
                  "command again",
    errno.ENOTDIR: "not a directory: choose another --out",
}


def file_error(path: Path | str, e: OSError, doing: str = "write") -> ConfigError:
    """One line for a failed file operation on ``path``: what failed and what to do."""
    why = _WHY.get(e.errno or 0) or (e.strerror or str(e))
    return ConfigError(f"cannot {doing} {path}: {why}")


# -- atomic files ----------------------------------------------------------------------------


def write_text(path: Path, chunks: Iterable[str]) -> None:
    """Write ``chunks`` to ``path`` atomically: into a temporary file of a name no other
    writer uses, flushed to disk, then renamed over ``path``. Readers see the old file or
    the new one, whole; an error (full disk, read-only, a directory at ``path``) is a
    :class:`ConfigError` naming ``path`` and leaves the old file as it was."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise file_error(path, e) from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise file_error(path, e) from e
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write JSON lines to ``path`` atomically (:func:`write_text`). Never fails on text: a
    lone surrogate is written as its escape (:func:`criticlab.store.json_text`), and U+2028,
    U+2029, U+0085 as theirs, so every reader sees one record a line."""
    write_text(path, (json_text(row).translate(LINE_BREAKS) + "\n" for row in rows))


def write_json(path: Path, data: Any) -> None:
    write_text(path, (json_text(data, indent=2) + "\n",))


# -- the run directory -----------------------------------------------------------------------


def check_out(out: Path) -> None:
    """Refuse, in one line, an ``--out`` that cannot be a run directory: a file, a device, a
    broken link, or a run directory whose files are not files."""
    if out.is_symlink() and not out.exists():
        raise ConfigError(f"{out} is a broken symbolic link (to {os.readlink(out)}): choose "
                          "another --out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is not a directory: choose another --out (a run directory "
                          "is made there)")
    for name in RUN_FILES:
        f = out / name
        if f.is_symlink() and not f.exists():
            raise ConfigError(f"{f} is a broken symbolic link: move it away, then run the "
                              "same command again")
        if f.exists() and not f.is_file():
            raise ConfigError(f"{f} is a directory, not the run's {name}: move it away, then "
                              "run the same command again")


class RunDir:
    """A run directory held by this process: checked (:func:`check_out`), created, and
    locked (``run.lock``, an advisory lock held until :meth:`close`, which removes the file;
    the kernel drops the lock when the process dies, so a killed run never blocks its
    resumption). A second process gets one line naming the holder."""

    def __init__(self, out: Path, *, create: bool = True) -> None:
        self.out = Path(out)
        check_out(self.out)
        if create:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise file_error(self.out, e, "create the run directory") from e
        elif not self.out.is_dir():
            raise ConfigError(f"{self.out}: no such run directory")
        self._fd: int | None = None
        self._lock()
        self._sweep()

    def _lock(self) -> None:
        path = self.out / LOCK
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                raise file_error(self.out, e, "write in") from e
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _holder(fd)
                    os.close(fd)
                    raise ConfigError(
                        f"{self.out} is in use by process {holder} (another criticlab run): "
                        "wait for it to end, or choose another --out") from None
                except OSError as e:  # a file system without locks: run unlocked
                    log.warning("cannot lock %s (%s): two runs into it would collide",
                                path, e.strerror or e)
            # the holder before us removes the file as it lets go: lock the file at the path
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            os.close(fd)
            raise file_error(path, e) from e
        self._fd = fd

    def _sweep(self) -> None:
        """Remove the temporary files of runs killed while writing (we hold the lock)."""
        for p in self.out.glob(".*.tmp"):
            if p.name[1:].rsplit(".", 3)[0] in RUN_FILES:
                with contextlib.suppress(OSError):
                    p.unlink()

    def close(self) -> None:
        """Let go of the directory: the lock file is removed, then the lock released."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.out / LOCK)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store_path(self) -> Path:
        return self.out / STORE

    def store(self) -> Store:
        """The run's store, checked (readable, writable, not damaged)."""
        return Store(self.store_path, check=True, damaged_hint=repair_hint(self.out))


def _holder(fd: int) -> str:
    for _ in range(20):  # the holder writes its pid right after it takes the lock
        with contextlib.suppress(OSError, ValueError):
            text = os.pread(fd, 32, 0).decode().strip()
            if text:
                return str(int(text))
        time.sleep(0.05)
    return "(unknown)"


def repair_hint(out: Path) -> str:
    return (f"the run's results are not lost: run `criticlab repair {out}`, then the same "
            "command again")


# -- the finished items an output file keeps -------------------------------------------------

KeptRow = Callable[[Mapping[str, Any]], "tuple[str, dict[str, Any]] | None"]


def kept_rows(path: Path, row: KeptRow) -> Iterator[tuple[str, dict[str, Any]]]:
    """The finished items a run's output file holds, as ``(item, stored row)``: ``row``
    turns one record into its item and row (``None``: not a finished item). A torn or
    foreign line is skipped."""
    try:
        f = path.open(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return
    except OSError as e:
        raise file_error(path, e, "read") from e
    with f:
        for line in f:
            try:
                record = json.loads(line)
                got = row(record) if isinstance(record, dict) else None
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            if got is not None:
                yield got


def check_kept(store: Store, out: Path, name: str, row: KeptRow, stored: set[str]) -> None:
    """Refuse a store that lacks finished items the run's output file ``name`` holds (the
    store was damaged, deleted or replaced): rewriting that file from the store would lose
    them. ``stored``: the items the store holds under the run's key; an item stored under
    another key of the store is not lost."""
    path = out / name
    kept = [item for item, _ in kept_rows(path, row) if item not in stored]
    if kept:
        anywhere = store.items()
        lost = [item for item in kept if item not in anywhere]
        if lost:
            raise ConfigError(
                f"{store.path} lacks {len(lost)} results that {path} holds (the store was "
                f"damaged or replaced): run `criticlab repair {out}` to put them back, then "
                "the same command again")


# -- repair ----------------------------------------------------------------------------------


@dataclass
class Repaired:
    """What :func:`repair_run` did."""

    results: int = 0
    """Finished items in the store now."""
    from_store: int = 0
    """Results read from the old (damaged) store."""
    from_output: int = 0
    """Results put back from the run's output file."""
    responses: int = 0
    """Model responses in the store now."""
    aside: Path | None = None
    """Where the damaged store was moved (None: it was sound, or missing)."""
    output: str = ""
    """The output file whose finished items were put back ("": none is read back)."""

    def line(self, out: Path) -> str:
        if self.aside is None and not self.from_output:
            return (f"nothing to repair: {out / STORE} is sound"
                    + (f" and holds every result of {self.output}" if self.output else ""))
        kept = f"; the damaged store is kept as {self.aside}" if self.aside else ""
        return (f"{out / STORE} rebuilt: {self.results} results ({self.from_store} read "
                f"from the store, {self.from_output} from {self.output or 'no output file'}), "
                f"{self.responses} model responses{kept}; run the same command again to "
                "resume")


def repair_run(out: Path, output: tuple[str, str, KeptRow] | None) -> Repaired:
    """Rebuild ``out``'s store: the rows of the old store it can still read, and the finished
    items of the output file (``output``: the run key, the file name and its
    :data:`KeptRow`; ``None`` for a job whose files cannot be read back) that no run of the
    store holds. A damaged store is moved aside (``store.sqlite.damaged-TIME``), never
    deleted; a sound one only gets the missing items."""
    if out.is_dir() and not (out / "config.json").is_file():
        raise ConfigError(f"{out} holds no config.json: not a run directory")
    with RunDir(out, create=False) as run:
        path = run.store_path
        kept = list(kept_rows(out / output[1], output[2])) if output else []
        sound = path.exists() and _sound(path)
        if sound or not path.exists():
            with Store(path, check=True) as store:
                done = Repaired(from_output=_put_back(store, output, kept))
                done.output = output[1] if output else done.output
                done.results, done.responses = store.count_results(), store.count_responses()
            return done
        new = path.with_name(f".{STORE}.{uuid.uuid4().hex[:8]}.new")
        responses, results = salvage(path)
        try:
            with Store(new, check=True) as store:
                store.put_raw(responses, results)
                done = Repaired(from_store=len(results), responses=len(responses),
                                output=output[1] if output else "")
                done.from_output = _put_back(store, output, kept)
                done.results = store.count_results()
        except BaseException:
            for f in STORE_FILES:
                with contextlib.suppress(OSError):
                    new.with_name(new.name + f).unlink()
            raise
        stamp = time.strftime("%Y%m%d-%H%M%S")
        done.aside = path.with_name(f"{STORE}.damaged-{stamp}")
        n = 1
        while done.aside.exists():  # never over an older one
            n += 1
            done.aside = path.with_name(f"{STORE}.damaged-{stamp}-{n}")
        try:
            for f in STORE_FILES:  # the database with its WAL, as SQLite pairs them
                if path.with_name(STORE + f).exists():
                    os.replace(path.with_name(STORE + f), done.aside.with_name(done.aside.name + f))
            os.replace(new, path)
        except OSError as e:
            raise file_error(path, e, "replace") from e
        return done


def _sound(path: Path) -> bool:
    try:
        with Store(path) as store:
            store.verify()
    except StoreError as e:
        if e.damaged:
            return False
        raise
    return True


def _put_back(store: Store, output: tuple[str, str, KeptRow] | None,
              kept: list[tuple[str, dict[str, Any]]]) -> int:
    """Store the output file's items that no run of the store holds, under the run key."""
    if output is None:
        return 0
    anywhere = store.items()
    return store.put_results(output[0], [(item, row) for item, row in kept
                                         if item not in anywhere])
