import subprocess
import sys

from tests.conftest import ROOT


def test_check_arithmetic_example():
    p = subprocess.run([sys.executable, "examples/check_arithmetic.py"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("step 1: correct")
    assert lines[1] == 'step 2: incorrect "12 - 2 = 11" is wrong: 12 - 2 = 10'
    assert lines[2].startswith("step 3: unknown")
    assert lines[-1] == "first error: 2"
