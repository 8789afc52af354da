"""``eval`` killed with SIGKILL at random moments and rerun: shared by the short test and
``benchmarks/kill_resume.py``. After the final, uninterrupted rerun the run directory must hold
exactly one result per item, no corrupt line, and the metrics of a run never interrupted."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# figures that describe this run, not the results
VOLATILE = ("elapsed_s", "this_run", "complete")


def write_items(path: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` records with arithmetic steps (some slipped), for the arithmetic critic."""
    rng = random.Random(seed)
    ids = []
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            a, b = rng.randrange(1000), rng.randrange(1000)
            slip = rng.choice([0, 0, 1])
            steps = [f"{a} + {b} = {a + b + slip}", f"{a + b + slip} * 2 = {2 * (a + b + slip)}"]
            f.write(json.dumps({"id": f"i{i}", "problem": f"{a}+{b}, doubled?", "steps": steps,
                                "label": 0 if slip else -1}) + "\n")
            ids.append(f"i{i}")
    return ids


def eval_cmd(data: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "criticlab", "eval", data, "--critic", "arithmetic",
            "--out", str(out)]


def run_to_end(data: str, out: Path, env: dict[str, str]) -> dict:
    p = subprocess.run(eval_cmd(data, out), capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"eval failed ({p.returncode}): {p.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text())


def kill_at(data: str, out: Path, env: dict[str, str], after: float) -> int:
    """Start eval, SIGKILL it ``after`` seconds later; the items it had stored."""
    proc = subprocess.Popen(eval_cmd(data, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    time.sleep(after)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return stored(out)


def stored(out: Path) -> int:
    from criticlab.store import Store

    path = out / "store.sqlite"
    if not path.exists():
        return 0
    with Store(path) as s:
        return int(s._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])


@dataclass
class Trial:
    kills: list[int]  # items stored at each kill
    rows: int
    duplicates: int
    corrupt: int
    missing: int
    same_metrics: bool

    @property
    def ok(self) -> bool:
        return (self.duplicates == 0 and self.corrupt == 0 and self.missing == 0
                and self.same_metrics)


def strip(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in VOLATILE}


def trial(data: str, ids: list[str], out: Path, reference: dict, env: dict[str, str],
          moments: list[float]) -> Trial:
    kills = [kill_at(data, out, env, t) for t in moments]
    metrics = run_to_end(data, out, env)
    seen: Counter[str] = Counter()
    corrupt = 0
    for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            seen[json.loads(line)["example"]["problem"]["id"]] += 1
        except (ValueError, KeyError, TypeError):
            corrupt += 1
    return Trial(kills, sum(seen.values()), sum(c - 1 for c in seen.values() if c > 1), corrupt,
                 sum(1 for i in ids if seen[i] == 0), strip(metrics) == strip(reference))
