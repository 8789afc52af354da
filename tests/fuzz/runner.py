"""Run one criticlab command on one hostile input and check the properties every command that
reads user files must have: exit code 0 or 2, no traceback on stderr, and every good record's
result present exactly once. Shared by the fuzz tests and ``benchmarks/fuzz.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.strategies import Case

ROOT = Path(__file__).resolve().parents[2]


def _ids_of_json_lines(text: str, get: Callable[[dict], str]) -> list[str]:
    ids = []
    for line in text.splitlines():
        if line.strip():
            ids.append(get(json.loads(line)))
    return ids


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


@dataclass(frozen=True)
class Command:
    """A command line (``{file}`` and ``{out}`` filled in per case) and where the ids of its
    results are read (None: the command's output has no per-record ids to check)."""

    name: str
    argv: tuple[str, ...]
    results: Callable[[str, Path], list[str]] | None


def _stdout_ids(stdout: str, out: Path) -> list[str]:
    return _ids_of_json_lines(stdout, lambda r: r["example"]["problem"]["id"])


def _eval_ids(stdout: str, out: Path) -> list[str]:
    return _ids_of_json_lines(_read(out / "results.jsonl"), lambda r: r["example"]["problem"]["id"])


def _refine_ids(stdout: str, out: Path) -> list[str]:
    return _ids_of_json_lines(_read(out / "trajectories.jsonl"), lambda r: r["problem"]["id"])


COMMANDS = {c.name: c for c in (
    Command("critique", ("critique", "{file}", "--critic", "arithmetic", "--json"), _stdout_ids),
    Command("eval", ("eval", "{file}", "--critic", "arithmetic", "--out", "{out}"), _eval_ids),
    Command("refine", ("refine", "{file}", "--critic", "arithmetic", "--strategy", "repair",
                       "--draft", "given", "--out", "{out}"), _refine_ids),
    Command("export", ("label", "export", "{file}", "--format", "stepwise", "--out",
                       "{out}/rows.jsonl", "--no-dataset"), None),
    Command("inject", ("label", "inject", "{file}", "--out", "{out}/injected.jsonl"), None),
)}


@dataclass
class Outcome:
    command: str
    case: str
    exit_code: int | None  # None: it hung
    problem: str | None  # None: every property held

    @property
    def ok(self) -> bool:
        return self.problem is None


def run_case(command: Command, case: Case, timeout: float = 60.0) -> Outcome:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f"input{case.suffix}"
        f.write_bytes(case.data)
        out = Path(d) / "out"
        argv = [a.replace("{file}", str(f)).replace("{out}", str(out)) for a in command.argv]
        env = {**os.environ, "CRITICLAB_STORE": str(Path(d) / "store.sqlite"), "COLUMNS": "120"}
        try:
            p = subprocess.run([sys.executable, "-m", "criticlab", *argv], capture_output=True,
                               cwd=ROOT, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Outcome(command.name, case.describe(), None, f"hung past {timeout:.0f} s")
        stdout = p.stdout.decode("utf-8", errors="replace")
        stderr = p.stderr.decode("utf-8", errors="replace")
        return Outcome(command.name, case.describe(), p.returncode,
                       check(command, case, p.returncode, stdout, stderr, out))


def check(command: Command, case: Case, code: int, stdout: str, stderr: str,
          out: Path) -> str | None:
    """What is wrong with this outcome, or None."""
    if "Traceback" in stderr:
        return "traceback: " + stderr[-1500:]
    if code not in (0, 2):
        return f"exit code {code}: {stderr[-500:]}"
    if command.results is None:
        return None
    try:
        ids = Counter(command.results(stdout, out))
    except (ValueError, KeyError, TypeError) as e:
        return f"unreadable output: {e}"
    wrong = {g: ids[g] for g in case.good if ids[g] != 1}
    if wrong:
        return f"good records not present exactly once: {wrong}; stderr: {stderr[-800:]}"
    return None
