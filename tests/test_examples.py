import os
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


def test_repair_a_slip_example():
    p = subprocess.run([sys.executable, "examples/repair_a_slip.py"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "round 0: first error 0; answer 74",
        '  "48 / 2 = 26" is wrong: 48 / 2 = 24',
        "round 1: first error None; answer 72",
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.",
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether.",
        "The answer is 72.",
    ]


def test_evaluate_a_verifier_example(shared_data, tmp_path):
    p = subprocess.run([sys.executable, "examples/evaluate_a_verifier.py", str(tmp_path / "r")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "CRITICLAB_DATA": str(shared_data)})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    # the figures README and issue 2 quote for the verifier on ProcessBench-GSM8K
    assert lines[0] == "400 items: acc_err 10.1  acc_cor 98.4  F1 18.4"
    assert lines[1].startswith("first miss: gsm8k-")
    assert (tmp_path / "r" / "results.jsonl").is_file()
