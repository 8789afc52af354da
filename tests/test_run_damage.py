"""A run directory that is damaged, shared, unwritable or full: `criticlab eval` says so in one
line (exit 2), never replaces a run's files with fewer results than they held, and once the
cause is gone (or `criticlab repair` has rebuilt the store) the resumed run gives exactly the
result of a run never interrupted."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fuzz.killing import strip, write_items

N = 300


def env(tmp_path: Path) -> dict[str, str]:
    e = {**os.environ, "COLUMNS": "200", "HOME": str(tmp_path),
         "CRITICLAB_STORE": str(tmp_path / "default-store.sqlite")}
    e.pop("RAY_ADDRESS", None)
    return e


def cli(tmp_path: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "criticlab", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env(tmp_path), timeout=600, **kw)


def evaluate(tmp_path: Path, data: Path, out: Path | str, *more: str, **kw):
    return cli(tmp_path, "eval", str(data), "--critic", "arithmetic", "--out", str(out), *more,
               **kw)


def one_line(p: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The process failed with exit 2 and exactly one line on stderr holding every needle."""
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The data and the run of it that nothing interrupted: (data, run dir, metrics)."""
    tmp = tmp_path_factory.mktemp("reference")
    data = tmp / "items.jsonl"
    write_items(data, N, seed=3)
    out = tmp / "run"
    p = evaluate(tmp, data, out)
    assert p.returncode == 0, p.stderr
    return data, out, json.loads((out / "metrics.json").read_text())


def finished(tmp_path: Path, reference, out: Path, resumed: int | None = None) -> dict:
    """Run to the end into ``out``: exit 0, the reference's results and metrics."""
    data, ref_out, ref = reference
    p = evaluate(tmp_path, data, out)
    assert p.returncode == 0, p.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert strip(m) == strip(ref) and m["complete"] and m["n"] == N
    assert (out / "results.jsonl").read_bytes() == (ref_out / "results.jsonl").read_bytes()
    if resumed is not None:
        assert m["this_run"]["resumed_items"] == resumed, m["this_run"]
    return m


def copy_run(reference, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(reference[1], out)
    return out


def damage_page(store: Path, page: int, seed: int = 0) -> None:
    """Random bytes over one whole page of ``store`` (pages count from 0 here)."""
    size = sqlite3.connect(store).execute("PRAGMA page_size").fetchone()[0]
    with store.open("r+b") as f:
        f.seek(page * size)
        f.write(random.Random(seed).randbytes(size))


def damaged(store: Path) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(store)) as db:
            return db.execute("PRAGMA quick_check").fetchone()[0] != "ok"
    except sqlite3.DatabaseError:
        return True


# -- a damaged store -------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["middle", 2])  # SQLite's message for page 2 spans two lines
def test_a_damaged_store_is_one_line_loses_nothing_and_repair_recovers_it(page, reference,
                                                                          tmp_path):
    out = copy_run(reference, tmp_path)
    store = out / "store.sqlite"
    pages = store.stat().st_size // 4096
    damage_page(store, pages // 2 if page == "middle" else int(page))
    assert damaged(store)
    before = {name: (out / name).read_bytes() for name in ("results.jsonl", "metrics.json")}
    p = evaluate(tmp_path, reference[0], out)
    one_line(p, str(store), "damaged", f"criticlab repair {out}")
    # the run's files hold what they held: nothing was rewritten from a store it cannot read
    assert {name: (out / name).read_bytes() for name in before} == before
    fixed = cli(tmp_path, "repair", str(out))
    assert fixed.returncode == 0, fixed.stderr
    aside = [p.name for p in out.iterdir() if p.name.startswith("store.sqlite.damaged-")]
    assert len(aside) == 1 and f"{N} results" in fixed.stderr, (aside, fixed.stderr)
    assert not damaged(store)
    # every result is read back: none is computed again
    finished(tmp_path, reference, out, resumed=N)


def test_repair_salvages_what_the_damaged_store_still_holds(reference, tmp_path):
    """Without results.jsonl, the rows of every page but the damaged one are saved."""
    out = copy_run(reference, tmp_path)
    (out / "results.jsonl").unlink()
    store = out / "store.sqlite"
    damage_page(store, store.stat().st_size // 4096 - 3, seed=1)
    assert damaged(store)
    one_line(evaluate(tmp_path, reference[0], out), "damaged", "criticlab repair")
    fixed = cli(tmp_path, "repair", str(out))
    assert fixed.returncode == 0, fixed.stderr
    m = finished(tmp_path, reference, out)
    # one 4 KiB page holds a few results of ~1 KB: the others are all read back
    assert N - 8 <= m["this_run"]["resumed_items"] < N


def test_a_store_that_lost_results_is_refused_until_repaired(reference, tmp_path):
    """A deleted (or replaced) store: results.jsonl holds results the store does not."""
    out = copy_run(reference, tmp_path)
    (out / "store.sqlite").unlink()
    before = (out / "results.jsonl").read_bytes()
    one_line(evaluate(tmp_path, reference[0], out), f"lacks {N} results",
             f"criticlab repair {out}")
    assert (out / "results.jsonl").read_bytes() == before
    fixed = cli(tmp_path, "repair", str(out))
    assert fixed.returncode == 0 and f"{N} results" in fixed.stderr, fixed.stderr
    finished(tmp_path, reference, out, resumed=N)
    nothing = cli(tmp_path, "repair", str(out))
    assert nothing.returncode == 0 and "nothing to repair" in nothing.stderr, nothing.stderr


def test_a_truncated_results_file_is_written_whole_again(reference, tmp_path):
    out = copy_run(reference, tmp_path)
    text = (out / "results.jsonl").read_bytes()
    (out / "results.jsonl").write_bytes(text[: len(text) // 3])
    finished(tmp_path, reference, out, resumed=N)


def test_repair_of_what_is_not_a_run_is_one_line(tmp_path):
    one_line(cli(tmp_path, "repair", str(tmp_path / "nothing")), "no such run directory")
    (tmp_path / "empty").mkdir()
    one_line(cli(tmp_path, "repair", str(tmp_path / "empty")), "config.json")


# -- two processes, one run directory --------------------------------------------------------


def test_a_run_directory_in_use_is_refused_naming_its_process(reference, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with (out / "run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        one_line(evaluate(tmp_path, reference[0], out), f"in use by process {os.getpid()}")
        assert sorted(p.name for p in out.iterdir()) == ["run.lock"]
    finished(tmp_path, reference, out, resumed=0)


def test_two_evals_into_one_out_one_runs_the_other_is_refused(tmp_path):
    data = tmp_path / "items.jsonl"
    write_items(data, 4000, seed=5)
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "criticlab", "eval", str(data), "--critic",
                              "arithmetic", "--out", str(out)], cwd=ROOT, env=env(tmp_path),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = evaluate(tmp_path, data, out)
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    one_line(second, f"in use by process {first.pid}")
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4000 and json.loads((out / "metrics.json").read_text())["complete"]


# -- Ray with no cluster ---------------------------------------------------------------------


def test_ray_with_no_cluster_is_one_line_and_leaves_no_run(reference, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "run"
    p = evaluate(tmp_path, reference[0], out, "--executor", "ray", "--address", "auto",
                 "--workers", "8")
    one_line(p, "ray start --head", "--address")
    assert not out.exists()


# -- an --out that cannot be a run directory -------------------------------------------------


def _file(tmp_path: Path) -> Path:
    (tmp_path / "f").write_text("mine\n")
    return tmp_path / "f"


def _link_to_file(tmp_path: Path) -> Path:
    (tmp_path / "link").symlink_to(_file(tmp_path))
    return tmp_path / "link"


def _dangling(tmp_path: Path) -> Path:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    return tmp_path / "dangling"


def _under_a_file(tmp_path: Path) -> Path:
    return _file(tmp_path) / "run"


@pytest.mark.parametrize("make,needle", [
    (_file, "not a directory"), (_link_to_file, "not a directory"),
    (_dangling, "broken symbolic link"), (_under_a_file, "not a directory"),
    (lambda tmp_path: Path("/dev/null"), "not a directory"),
], ids=["file", "link-to-file", "dangling-link", "under-a-file", "dev-null"])
def test_an_out_that_is_not_a_directory_is_one_line(make, needle, reference, tmp_path):
    target = make(tmp_path)
    one_line(evaluate(tmp_path, reference[0], target), str(target), needle)
    assert Path("/dev/null").is_char_device()
    if (tmp_path / "f").exists():
        assert (tmp_path / "f").read_text() == "mine\n"
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("name", ["results.jsonl", "metrics.json", "config.json",
                                  "store.sqlite"])
def test_a_run_file_replaced_by_a_directory_is_one_line_then_resumes(name, reference,
                                                                     tmp_path):
    out = copy_run(reference, tmp_path)
    keep = {p.name: p.read_bytes() for p in out.iterdir() if p.name != name}
    (out / name).unlink()
    (out / name).mkdir()
    (out / name / "x").write_text("x")
    one_line(evaluate(tmp_path, reference[0], out), str(out / name), "directory")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == keep
    shutil.rmtree(out / name)
    if name == "store.sqlite":
        assert cli(tmp_path, "repair", str(out)).returncode == 0
    finished(tmp_path, reference, out, resumed=N)


# -- read-only, full -------------------------------------------------------------------------


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` cannot be written, even by root (a read-only bind mount, as root)."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if not shutil.which("mount") or not _mount("--bind", str(path), str(path)):
        pytest.skip("running as root and cannot bind-mount: no way to make a file read-only")
    try:
        assert _mount("-o", "remount,bind,ro", str(path), str(path))
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_read_only_out_is_one_line_then_resumes(reference, tmp_path):
    data = reference[0]
    out = tmp_path / "run"
    assert evaluate(tmp_path, data, out, "--limit", "100").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with read_only(out):
        one_line(evaluate(tmp_path, data, out), str(out), "read-only")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    finished(tmp_path, reference, out, resumed=100)


def test_a_new_out_in_a_read_only_folder_is_one_line(reference, tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    with read_only(parent):
        one_line(evaluate(tmp_path, reference[0], parent / "run"), "read-only")
    assert list(parent.iterdir()) == []


def test_a_read_only_store_is_one_line_then_resumes(reference, tmp_path):
    data = reference[0]
    out = tmp_path / "run"
    assert evaluate(tmp_path, data, out, "--limit", "100").returncode == 0
    before = (out / "results.jsonl").read_bytes()
    with read_only(out / "store.sqlite"):
        one_line(evaluate(tmp_path, data, out), str(out / "store.sqlite"), "read-only")
    assert (out / "results.jsonl").read_bytes() == before
    finished(tmp_path, reference, out, resumed=100)


def _file_size_limit(limit: int):
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limited


def test_a_file_size_limit_is_one_line_then_resumes(reference, tmp_path):
    out = tmp_path / "run"
    p = evaluate(tmp_path, reference[0], out, preexec_fn=_file_size_limit(64 * 1024))
    one_line(p, str(out), "ulimit")
    finished(tmp_path, reference, out)


def test_a_full_disk_is_one_line_then_resumes(reference, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        out = disk / "run"
        one_line(evaluate(tmp_path, reference[0], out), "no space left")
        assert _mount("-o", "remount,size=64m", str(disk))
        finished(tmp_path, reference, out)
    finally:
        subprocess.run(["umount", str(disk)], check=True)
