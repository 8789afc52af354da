"""A run directory damaged on disk, then resumed as a user would: rerun ``eval``; if it
refuses in one line, ``criticlab repair``, then rerun. Shared by the short test and
``benchmarks/kill_resume.py --damage``.

Three damages: random bytes over one page of a finished run's ``store.sqlite``; a WAL torn
after a SIGKILL (cut at a random byte, or its tail overwritten); a finished run's
``results.jsonl`` cut at a random byte. A result is *lost* when ``results.jsonl`` held it
before the damage and the recovery did not give it back (it had to be computed again); the
results only the store held that a damage destroyed (the frames after a WAL's tear) are
*dropped*, counted apart: nothing but the damaged bytes held them."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.killing import ROOT, eval_cmd, strip

KINDS = ("page", "wal", "results")


@dataclass
class Damaged:
    kind: str
    what: str  # the damage done
    held: int  # results results.jsonl held before the damage
    refused: list[str] = field(default_factory=list)  # the one-line refusals, in order
    bad_refusals: int = 0  # refusals that were not one line, exit 2, without a traceback
    touched: int = 0  # refusals after which results.jsonl was not what it was
    repaired: bool = False
    lost: int = 0
    dropped: int = 0
    rows: int = 0
    duplicates: int = 0
    corrupt: int = 0
    missing: int = 0
    same_metrics: bool = False

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.bad_refusals == 0 and self.touched == 0
                and self.duplicates == 0 and self.corrupt == 0 and self.missing == 0
                and self.same_metrics)


def _ids(path: Path) -> set[str]:
    """The items of the finished results a results.jsonl holds (torn lines skipped)."""
    ids = set()
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
                if row.get("critique") is not None:
                    ids.add(row["example"]["problem"]["id"])
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
    return ids


def _stored(out: Path) -> set[str]:
    """The items a store holds, read from a copy (opening the store itself would apply
    and remove its WAL)."""
    with tempfile.TemporaryDirectory() as d:
        for suffix in ("", "-wal", "-shm"):
            src = out / f"store.sqlite{suffix}"
            if src.exists():
                shutil.copy(src, Path(d) / f"s.sqlite{suffix}")
        try:
            db = sqlite3.connect(Path(d) / "s.sqlite")
            try:
                return {r[0] for r in db.execute("SELECT item FROM results")}
            finally:
                db.close()
        except sqlite3.Error:
            return set()


def damage_page(store: Path, rng: random.Random) -> str:
    size = sqlite3.connect(store).execute("PRAGMA page_size").fetchone()[0]
    pages = store.stat().st_size // size
    page = rng.randrange(pages)
    with store.open("r+b") as f:
        f.seek(page * size)
        f.write(rng.randbytes(size))
    return f"page {page + 1} of {pages} overwritten"


def tear_wal(wal: Path, rng: random.Random) -> str:
    size = wal.stat().st_size if wal.exists() else 0
    if size <= 32:
        return "no WAL left to tear"
    at = rng.randrange(32, size)
    if rng.random() < 0.5:
        os.truncate(wal, at)
        return f"WAL cut at byte {at} of {size}"
    with wal.open("r+b") as f:
        f.seek(at)
        f.write(rng.randbytes(min(size - at, rng.randrange(1, 65536))))
    return f"WAL overwritten from byte {at} of {size}"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)


def damage_trial(kind: str, data: str, ids: list[str], reference_dir: Path, reference: dict,
                 out: Path, env: dict[str, str], rng: random.Random) -> Damaged:
    """One damage of ``kind`` to a run of ``data`` in ``out``, then the recovery; the
    reference is the uninterrupted run (its directory is copied for a finished run)."""
    if kind == "wal":
        # half the items finished and written out, then a run killed with its WAL in use
        half = str(len(ids) // 2)
        p = _cli(*eval_cmd(data, out), "--limit", half, env=env)
        assert p.returncode == 0, p.stderr[-2000:]
        proc = subprocess.Popen(eval_cmd(data, out), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
        wal = out / "store.sqlite-wal"
        while proc.poll() is None and not (wal.exists() and wal.stat().st_size > 65536):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.5))  # then at a random moment of the writing
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    else:
        shutil.copytree(reference_dir, out)
    held = _ids(out / "results.jsonl")
    before_store = _stored(out)
    if kind == "page":
        what = damage_page(out / "store.sqlite", rng)
    elif kind == "wal":
        what = tear_wal(out / "store.sqlite-wal", rng)
    else:
        path = out / "results.jsonl"
        size = path.stat().st_size
        at = rng.randrange(size)
        os.truncate(path, at)
        what = f"results.jsonl cut at byte {at} of {size}"
    t = Damaged(kind, what, len(held))
    results_before = (out / "results.jsonl").read_bytes() if (
        out / "results.jsonl").exists() else None

    def rerun() -> subprocess.CompletedProcess[str]:
        return _cli(*eval_cmd(data, out), env=env)

    start = time.time()
    p = rerun()
    if p.returncode != 0:
        lines = p.stderr.strip().splitlines()
        t.refused.append(lines[-1] if lines else "")
        t.bad_refusals += not (p.returncode == 2 and len(lines) == 1
                               and "Traceback" not in p.stderr)
        now = (out / "results.jsonl").read_bytes() if (
            out / "results.jsonl").exists() else None
        t.touched += now != results_before
        fixed = _cli(*eval_cmd(data, out)[:3], "repair", str(out), env=env)
        t.repaired = fixed.returncode == 0
        if not t.repaired:
            t.bad_refusals += 1
            t.refused.append(fixed.stderr.strip()[-300:])
        start = time.time()
        p = rerun()
    if p.returncode != 0:
        t.bad_refusals += 1
        t.refused.append(p.stderr.strip()[-300:])
        return t
    # the items computed by the final run: their rows were written after it started
    db = sqlite3.connect(out / "store.sqlite")
    try:
        fresh = {r[0] for r in db.execute("SELECT item FROM results WHERE created >= ?",
                                          (start,))}
    finally:
        db.close()
    t.lost = len(fresh & held)
    t.dropped = len((fresh & before_store) - held)
    metrics = json.loads((out / "metrics.json").read_text())
    seen: Counter[str] = Counter()
    for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            seen[json.loads(line)["example"]["problem"]["id"]] += 1
        except (ValueError, KeyError, TypeError):
            t.corrupt += 1
    t.rows = sum(seen.values())
    t.duplicates = sum(c - 1 for c in seen.values() if c > 1)
    t.missing = sum(1 for i in ids if seen[i] == 0)
    t.same_metrics = strip(metrics) == strip(reference)
    return t
