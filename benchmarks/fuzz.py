"""The fuzz suite's strategies at scale: N hostile input files per command (Hypothesis), each
run through the real CLI, counting tracebacks, hangs, other exit codes and good records lost.

The tests run each case as its own process; at 10,000 cases that would take hours, so here a
worker process runs the CLI in-process case after case (``criticlab.cli.main``, stdout and
stderr captured) and the parent gives each case a time limit: a case that passes it is counted
as a hang, the worker is killed and a fresh one goes on. Failing inputs are kept under
``--keep`` for reproduction with the printed command.

    python benchmarks/fuzz.py [--cases 10000] [--commands critique,eval,refine,export,inject]
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import logging
import multiprocessing as mp
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.fuzz.runner import COMMANDS, check  # noqa: E402
from tests.fuzz.strategies import Case, input_case  # noqa: E402


def generate(n: int, seed: int) -> list[Case]:
    cases: list[Case] = []

    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=input_case())
    def collect(case: Case) -> None:
        cases.append(case)

    collect._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    collect()
    return cases


class _CurrentStderr(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")


def _worker(jobs: mp.Queue, results: mp.Queue) -> None:
    faulthandler.enable()  # so the CLI forks no crash watcher per call
    logging.getLogger().addHandler(_CurrentStderr())
    logging.getLogger().setLevel(logging.WARNING)
    from criticlab.cli import main

    while True:
        job = jobs.get()
        if job is None:
            return
        i, name, case = job
        command = COMMANDS[name]
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / f"input{case.suffix}"
            f.write_bytes(case.data)
            out = Path(d) / "out"
            argv = [a.replace("{file}", str(f)).replace("{out}", str(out)) for a in command.argv]
            os.environ["CRITICLAB_STORE"] = str(Path(d) / "store.sqlite")
            stdout, stderr = io.StringIO(), io.StringIO()
            code: int = 0
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                try:
                    main(argv)
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else 1
                except BaseException:  # a traceback the user would have seen
                    stderr.write(traceback.format_exc())
                    code = 1
            problem = check(command, case, code, stdout.getvalue(), stderr.getvalue(), out)
        results.put((i, code, problem))


def run(name: str, cases: list[Case], timeout: float, keep: Path) -> Counter[str]:
    ctx = mp.get_context("fork")
    counts: Counter[str] = Counter()
    i = 0
    while i < len(cases):
        jobs, results = ctx.Queue(), ctx.Queue()
        worker = ctx.Process(target=_worker, args=(jobs, results), daemon=True)
        worker.start()
        try:
            while i < len(cases):
                jobs.put((i, name, cases[i]))
                try:
                    _, code, problem = results.get(timeout=timeout)
                except Exception:  # queue.Empty: the case hung (or the worker died)
                    counts["hangs" if worker.is_alive() else "crashes"] += 1
                    _keep(keep, name, i, cases[i], "hang")
                    i += 1
                    break
                counts["cases"] += 1
                counts[f"exit {code}"] += 1
                if problem is not None:
                    kind = ("tracebacks" if problem.startswith("traceback") else
                            "lost good records" if problem.startswith("good records") else
                            "other failures")
                    counts[kind] += 1
                    _keep(keep, name, i, cases[i], problem)
                i += 1
                if i % 500 == 0:
                    print(f"  {name}: {i}/{len(cases)}", flush=True)
        finally:
            worker.kill()
            worker.join()
    return counts


def _keep(keep: Path, name: str, i: int, case: Case, problem: str) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    path = keep / f"{name}-{i}{case.suffix}"
    path.write_bytes(case.data)
    (keep / f"{name}-{i}.txt").write_text(problem[:4000])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000, help="Cases per command.")
    ap.add_argument("--commands", default=",".join(COMMANDS))
    ap.add_argument("--timeout", type=float, default=30.0, help="Seconds per case.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "criticlab-fuzz")
    args = ap.parse_args()
    names = [n.strip() for n in args.commands.split(",")]
    t = time.perf_counter()
    cases = generate(args.cases, args.seed)
    good = sum(len(c.good) for c in cases)
    print(f"{len(cases)} cases generated in {time.perf_counter() - t:.0f} s "
          f"({good} good records among them); failures kept in {args.keep}")
    rows = []
    for name in names:
        t = time.perf_counter()
        counts = run(name, cases, args.timeout, args.keep)
        rows.append((name, counts, time.perf_counter() - t))
    print(f"\n{'command':9s} {'cases':>6s} {'exit 0':>7s} {'exit 2':>7s} {'tracebacks':>10s} "
          f"{'hangs':>6s} {'lost good':>9s} {'other':>6s} {'seconds':>8s}")
    for name, c, secs in rows:
        print(f"{name:9s} {c['cases'] + c['hangs'] + c['crashes']:6d} {c['exit 0']:7d} "
              f"{c['exit 2']:7d} {c['tracebacks']:10d} {c['hangs'] + c['crashes']:6d} "
              f"{c['lost good records']:9d} {c['other failures']:6d} {secs:8.0f}")


if __name__ == "__main__":
    main()
