"""Time a statement in a fresh interpreter, so that a hang (a regex that backtracks for ever
holds the GIL: no thread can stop it) fails one test instead of stopping the suite."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

START_SLACK_S = 10.0  # interpreter start and imports on a loaded machine, on top of the bound


def seconds(setup: str, stmt: str, bound_s: float = 2.0) -> float:
    """Seconds ``stmt`` took after ``setup`` in a subprocess; fails the test when it takes more
    than ``bound_s`` or the subprocess is still running ``START_SLACK_S`` later (then killed).
    The bound is generous: the statements timed here take milliseconds when linear."""
    code = (f"import time\n{setup}\nt = time.perf_counter()\n{stmt}\n"
            "print(time.perf_counter() - t)")
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, timeout=bound_s + START_SLACK_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{stmt} did not finish in {bound_s + START_SLACK_S:.0f} s (bound {bound_s} s)")
    assert done.returncode == 0, done.stderr[-2000:]
    took = float(done.stdout.split()[-1])
    assert took < bound_s, f"{stmt} took {took:.2f} s (bound {bound_s} s)"
    return took
