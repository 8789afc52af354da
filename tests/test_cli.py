"""The command line as a user runs it: a real process, real exit codes."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(*args, stdin=None, env_store=None, tmp_path=None):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path or ROOT), "COLUMNS": "200",
           "CRITICLAB_STORE": str((tmp_path or ROOT) / "store.sqlite")}
    return subprocess.run(
        [sys.executable, "-m", "criticlab", *args], input=stdin, capture_output=True,
        cwd=ROOT, env=env, timeout=600,
    )


def test_bad_records_are_reported_and_good_ones_critiqued(tmp_path):
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(
        b'{"id": "good1", "problem": "q", "steps": ["3 * 4 = 12", "12 + 1 = 14"]}\n'
        b'{broken\n'
        b'{"steps": ["1 + 1 = 2"]}\n'
        b'{"problem": "q", "steps": []}\n'
        b'{"problem": "caf\xe9", "steps": ["a"]}\n'
        b'{"id": "good2", "problem": "q", "solution": "2 + 2 = 4"}\n'
    )
    p = run("critique", str(data), "--critic", "arithmetic", "--json", tmp_path=tmp_path)
    assert p.returncode == 2
    err = p.stderr.decode().strip().splitlines()
    assert f"error: {data}:2: invalid JSON" in err[0]
    assert err[1] == f"error: {data}:3: problem: missing (each record needs the problem text)"
    assert err[2] == f"error: {data}:4: steps: is empty (give at least one step)"
    assert err[3] == f"error: {data}:5: problem: contains bytes that are not valid UTF-8"
    assert "Traceback" not in p.stderr.decode()
    rows = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert [r["example"]["problem"]["id"] for r in rows] == ["good1", "good2"]
    assert rows[0]["critique"]["first_error"] == 1
    assert rows[1]["critique"]["verdict"] == "correct"


@pytest.mark.parametrize("args,needle", [
    (["critique", "does/not/exist.json"], "does/not/exist.json: no such file"),
    (["critique", "examples/demo.json", "--critic", "oracle"], "unknown critic 'oracle'"),
    (["critique", "examples/demo.json", "--model", "gpt9", "--critic", "stepwise"],
     "unknown model 'gpt9'"),
    (["critique", "examples/demo.json", "--model", "llamacpp:/no/such.gguf",
      "--critic", "stepwise"], "/no/such.gguf: no such GGUF file"),
    (["critique", "examples/demo.json", "--samples", "0"], "--samples must be at least 1"),
    # brackets are text, not rich markup (an install hint's 'criticlab[embedded]')
    (["critique", "examples/demo.json", "--critic", "vote[x]"], "vote[x]"),
])
def test_user_errors_are_one_line_exit_2(args, needle, tmp_path):
    p = run(*args, tmp_path=tmp_path)
    err = p.stderr.decode().strip()
    assert p.returncode == 2, err
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_models_lists_every_model_kind(tmp_path):
    p = run("models", tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode()
    for usage in ("embedded", "llamacpp:PATH.gguf", "openai:MODEL", "hf:PATH|embedded|HUB_ID",
                  "vllm:MODEL", "criticlab[hf]", "criticlab[vllm]"):
        assert usage in out, usage


def test_stdin_and_human_table(tmp_path):
    rec = {"id": "s", "problem": "Sam buys 3 pens at $2.", "solution": "3 * 2 = 7\nSo $7."}
    p = run("critique", "-", "--critic", "arithmetic", stdin=json.dumps(rec).encode(),
            tmp_path=tmp_path)
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    assert "first error: step 1" in out and "incorrect" in out and "3 * 2 = 6" in out
    assert "1 critiqued, 1 with an error" in p.stderr.decode()


@pytest.mark.slow
def test_constraints_critic_from_the_command_line(tmp_path, embedded_path):
    rec = {"id": "if1", "problem": "Write a short poem about the sea in all lowercase letters. "
           "Do not use any commas.", "solution": "The sea is wide and blue\nit sings to me, and you"}
    p = run("critique", "-", "--critic", "constraints", "--max-tokens", "48", "--json",
            stdin=json.dumps(rec).encode(), tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    crit = json.loads(p.stdout)["critique"]
    assert crit["verdict"] == "incorrect" and crit["first_error"] == 0
    verdicts = {s["explanation"].split(":")[0]: s["verdict"] for s in crit["steps"]}
    assert verdicts["Write the whole answer in lowercase letters"] == "incorrect"
    assert verdicts["Do not use any commas"] == "incorrect"


def test_code_critic_from_the_command_line(tmp_path):
    from criticlab.critics.sandbox import isolation_problem
    if isolation_problem():
        pytest.skip(f"no sandbox here: {isolation_problem()}")
    rec = {"id": "add", "problem": "Read two integers and print their sum.",
           "solution": "a, b = map(int, input().split())\nprint(a * b)",
           "tests": [{"input": "2 2\n", "output": "4"}, {"input": "2 3\n", "output": "5"}]}
    p = run("critique", "-", "--critic", "code", "--json", stdin=json.dumps(rec).encode(),
            tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    crit = json.loads(p.stdout)["critique"]
    assert crit["first_error"] == 1 and crit["verdict"] == "incorrect" and crit["score"] == 0.5
    assert "expected '5', got '6" in crit["steps"][1]["explanation"]
