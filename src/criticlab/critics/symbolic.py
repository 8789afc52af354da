"""A model-free critic for competition-math algebra: check each step's LaTeX claims with SymPy.

Claims come from :mod:`criticlab.critics.symbolic_claims` (links of ``A = B = C`` chains,
inequalities, implications between equations, ``x = 3`` after an equation in ``x``). Each side
is parsed by math-verify's ``latex2sympy`` and judged:

- no free symbols: the exact value of ``left - right`` (``evalf`` at 30 digits); an equality
  whose sides differ by less than one unit of the last decimal written holds (a rounding), an
  inequality is compared exactly; ``50\\%`` is read both as 0.5 and as 50;
- free symbols, on a link meant as an identity (a later link of a chain or a continuation
  ``= ...``, or a derivative), the same symbols on both sides and both sides rational in them:
  exact evaluation at small positive integer and rational points; one point where the sides
  differ is a counterexample;
- ``P \\implies Q`` (or ``x = 3`` after ``P``): when ``P`` or ``Q`` is linear in its only
  variable ``x``, its root must satisfy the other equation.

Everything else ("A = B" with free symbols read as an equation to solve, definitions, unknown
functions, words, ``\\approx``, anything that fails to parse) is "unknown", never "correct" by
default and never "incorrect". A claim is "incorrect" only with a value or a counterexample.

Time: SymPy runs in a worker process (``spawn``, so the parent never imports SymPy and the
worker shares no threads or locks with it). Each claim may use :data:`CLAIM_TIMEOUT_S` of CPU
time; the worker stops one that takes longer (a CPU-time timer, so verdicts do not depend on
how busy the machine is), and it is "unknown". The worker lives on with its caches: the LaTeX
parser's prediction cache, which grows with what it has read, is worth more than anything else
here (:mod:`criticlab.critics.symbolic_parse`). A computation Python cannot interrupt (a
pathological power tower inside GMP) is cut by the parent :data:`KILL_GRACE_S` later by
killing the worker, which starts again at the next claim. ``critique`` is async: it sends a
solution's claims from a thread (``asyncio.to_thread``) holding one worker of a shared pool
(:data:`WORKERS` processes), so concurrent critiques run side by side without blocking the
event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing as mp
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from criticlab.critics.base import first_incorrect
from criticlab.critics.ensemble import HybridCritic
from criticlab.critics.symbolic_claims import (
    Claim,
    extract_claims,
    problem_equations,
    undecidable,
)
from criticlab.critics.symbolic_judge import ClaimResult, judge, serve
from criticlab.types import Critique, Overall, Problem, Solution, StepVerdict

log = logging.getLogger(__name__)

__all__ = ["CLAIM_TIMEOUT_S", "ClaimResult", "SymbolicCritic", "VerifiersCritic", "judge"]

CLAIM_TIMEOUT_S = 0.5  # the CPU seconds one claim may cost; longer is "unknown"
KILL_GRACE_S = 2.0  # how long past its limit a claim may run (wall clock) before its worker is
# killed: only a computation Python cannot interrupt (inside GMP) gets there
START_TIMEOUT_S = 60.0  # a worker's start (Python, SymPy and latex2sympy imports)
WORKERS = 1  # worker processes per pool; more let concurrent critiques run in parallel
MAX_STEP_CHARS = 20_000  # a longer step is not read ("unknown", as in the arithmetic verifier)


# -- the worker processes (parent side; no SymPy here) ----------------------------------------


class _Worker:
    def __init__(self) -> None:
        self.proc: Any = None
        self.conn: Connection | None = None

    def _start(self) -> Connection:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(child,), daemon=True, name="criticlab-sympy")
        proc.start()
        child.close()
        try:
            ready = parent.poll(START_TIMEOUT_S) and parent.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            proc.kill()
            raise RuntimeError(
                "the symbolic verifier's SymPy worker did not start; a script that uses it "
                "must start under `if __name__ == \"__main__\":` (worker processes are "
                "spawned and import the main module)")
        self.proc, self.conn = proc, parent
        return parent

    def call(self, claim: Claim, timeout: float) -> ClaimResult | None:
        """The result, or ``None`` when it took more than ``timeout`` CPU seconds (the worker
        stops it and lives on) or ran :data:`KILL_GRACE_S` past it (the worker is killed)."""
        conn = self.conn if self.proc is not None and self.proc.is_alive() else None
        if conn is None:
            conn = self._start()
        try:
            conn.send((claim, timeout))
            if conn.poll(timeout + KILL_GRACE_S):
                result: ClaimResult | None = conn.recv()
                return result
        except (EOFError, OSError, BrokenPipeError):
            pass
        self.stop()
        return None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join(1)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None


class _Pool:
    def __init__(self, size: int) -> None:
        self.idle: queue.Queue[_Worker] = queue.Queue()
        self.all = [_Worker() for _ in range(size)]
        for w in self.all:
            self.idle.put(w)

    @contextmanager
    def worker(self) -> Iterator[_Worker]:
        w = self.idle.get()
        try:
            yield w
        finally:
            self.idle.put(w)

    def close(self) -> None:
        for w in self.all:
            w.stop()


_POOLS: dict[int, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _close_pools() -> None:
    for p in _POOLS.values():
        p.close()


def _pool(size: int) -> _Pool:
    with _POOLS_LOCK:
        if size not in _POOLS:
            if not _POOLS:
                atexit.register(_close_pools)
            _POOLS[size] = _Pool(size)
        return _POOLS[size]


# -- the critic -------------------------------------------------------------------------------


class SymbolicCritic:
    """Checks each step's LaTeX claims with SymPy (no model); see the module docstring.

    Per step: "incorrect" when a claim is certainly wrong (the explanation names it with the
    right value or a counterexample), "correct" when at least one claim was checked and all
    held, "unknown" otherwise. ``feedback`` says how many claims were checked and how many
    could not be decided. The overall verdict is "incorrect" when a step is, "correct" when
    some claim was checked, ``None`` when none could be.
    """

    name = "symbolic"

    def __init__(self, workers: int = WORKERS, timeout: float = CLAIM_TIMEOUT_S) -> None:
        self.workers, self.timeout = workers, timeout

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        return await asyncio.to_thread(self.critique_blocking, problem, solution)

    def critique_blocking(self, problem: Problem, solution: Solution) -> Critique:
        """``critique`` in the calling thread (it blocks while the worker checks)."""
        earlier = problem_equations(problem.question)
        per_step: list[list[Claim]] = []
        for text in solution.steps:
            if len(text) > MAX_STEP_CHARS:
                per_step.append([])
                continue
            per_step.append(extract_claims(text, earlier))
        results: list[list[ClaimResult]] = []
        with _pool(self.workers).worker() as w:
            for claims in per_step:
                results.append(self._check(w, claims))
        return self._critique(solution, results)

    def _check(self, w: _Worker, claims: Sequence[Claim]) -> list[ClaimResult]:
        out, seen = [], set()
        for c in claims:
            if c.text in seen:
                continue
            seen.add(c.text)
            why = undecidable(c)
            if why is not None:
                out.append(ClaimResult(c, None, why))
                continue
            r = w.call(c, self.timeout)
            if r is None:
                r = ClaimResult(c, None, f'"{c.text}": not checked, took longer than '
                                f"{self.timeout:g} s")
            out.append(r)
        return out

    def _critique(self, solution: Solution, results: list[list[ClaimResult]]) -> Critique:
        steps = []
        for i, rs in enumerate(results):
            wrong = [r for r in rs if r.ok is False]
            held = [r for r in rs if r.ok]
            if len(solution.steps[i]) > MAX_STEP_CHARS:
                steps.append(StepVerdict(i, "unknown", f"not checked: longer than "
                                         f"{MAX_STEP_CHARS:,} characters", None))
            elif wrong:
                steps.append(StepVerdict(i, "incorrect", "; ".join(r.message for r in wrong),
                                         0.0))
            elif held:
                steps.append(StepVerdict(i, "correct", "checked: " + "; ".join(
                    r.claim.text for r in held), 1.0))
            else:
                why = "no claim the symbolic verifier could decide"
                if rs:
                    why += " (" + "; ".join(r.message for r in rs[:3]) + (
                        "; ..." if len(rs) > 3 else "") + ")"
                steps.append(StepVerdict(i, "unknown", why, None))
        checked = sum(r.ok is not None for rs in results for r in rs)
        undecided = sum(r.ok is None for rs in results for r in rs)
        counts = f"{checked} claim(s) checked, {undecided} could not be decided."
        first_error = first_incorrect(steps)
        verdict: Overall | None
        if first_error is not None:
            verdict = "incorrect"
            feedback = f"Step {first_error + 1}: {steps[first_error].explanation} ({counts})"
        elif checked:
            verdict, feedback = "correct", f"Every claim checked holds: {counts}"
        else:
            verdict, feedback = None, f"The symbolic verifier cannot judge: {counts}"
        score = None if verdict is None else float(verdict == "correct")
        return Critique(steps=tuple(steps), first_error=first_error, verdict=verdict,
                        feedback=feedback, score=score, parsed=True, critic=self.name)


class VerifiersCritic(HybridCritic):
    """The model-free verifiers together (arithmetic first, then symbolic): HybridCritic's
    combination without an LM: the earliest certain error wins, and its explanation names the
    verifier that found it."""

    def __init__(self) -> None:
        from criticlab.critics.arithmetic import ArithmeticCritic

        super().__init__([ArithmeticCritic(), SymbolicCritic()], None)
        self.name = "verifiers"
