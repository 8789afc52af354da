"""Property-based fuzzing of every command that reads user files (Hypothesis): whatever the
file holds, the exit code is 0 or 2, stderr holds no traceback, and every good record's result
is present exactly once. Each example is a whole file of mixed good and bad records, run as a
real process; ``benchmarks/fuzz.py`` runs the same strategies at 10,000 cases."""

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz.runner import COMMANDS, run_case
from tests.fuzz.strategies import RUN_FILES, corrupt_run, input_case

# Each example is a process run; shrinking would rerun hangs for minutes, so a failure keeps
# its whole input file instead (the path is in the message).
FUZZ = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_hostile_files_lose_nothing(name):
    @FUZZ
    @given(case=input_case())
    def prop(case):
        outcome = run_case(COMMANDS[name], case, timeout=30)
        if not outcome.ok:
            kept = Path(tempfile.mkdtemp(prefix="criticlab-fuzz-")) / f"input{case.suffix}"
            kept.write_bytes(case.data)
            pytest.fail(f"{outcome.command} on {kept} ({outcome.case}): {outcome.problem}")

    prop()


@FUZZ
@given(files=corrupt_run())
def test_report_on_a_corrupt_run_directory(files, tmp_path_factory):
    import subprocess
    import sys

    from tests.fuzz.runner import ROOT

    run = tmp_path_factory.mktemp("run")
    for name in RUN_FILES:
        if name in files:
            (run / name).write_bytes(files[name])
    p = subprocess.run([sys.executable, "-m", "criticlab", "report", str(run), "--out",
                        str(run / "r.html")], capture_output=True, cwd=ROOT, timeout=120)
    stderr = p.stderr.decode(errors="replace")
    assert p.returncode in (0, 2) and "Traceback" not in stderr, (sorted(files), stderr[-1500:])
    if p.returncode == 2:
        assert len(stderr.strip().splitlines()) == 1, stderr
