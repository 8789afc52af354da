"""The code critic and its sandbox. Runs real programs in the real sandbox; where this machine
cannot isolate code (no namespaces), the tests that need it skip, and the refusal is tested."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from criticlab.critics.base import critique_sync
from criticlab.critics.code import CodeCritic, extract_code, same_output
from criticlab.critics.sandbox import SandboxResult, isolation_problem, run_sandboxed
from criticlab.errors import InputError
from criticlab.types import Critique, Problem, Solution

HOSTILE = Path(__file__).parent / "hostile"
REPO = Path(__file__).resolve().parents[2]
ADD_IO = [{"input": "1 2\n", "output": "3\n"}, {"input": "20  22\n", "output": "42"}]
ADD = "a, b = map(int, input().split())\nprint(a + b)\n"


@pytest.fixture(scope="module")
def isolated() -> None:
    why = isolation_problem()
    if why is not None:
        pytest.skip(f"this machine cannot isolate code: {why}")


def problem(tests: object, **metadata: object) -> Problem:
    return Problem("p1", "a problem", metadata={"tests": tests, **metadata})


def judge(tests: object, *steps: str, critic: CodeCritic | None = None,
          **metadata: object) -> Critique:
    return critique_sync(critic or CodeCritic(), problem(tests, **metadata), Solution(steps))


def uid_processes(uid: int) -> list[int]:
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                found.append(int(pid))
        except OSError:
            pass
    return found


def run_hostile(name: str, stdin: object = None, **limits: Any) -> tuple[SandboxResult, float]:
    code = (HOSTILE / f"{name}.py").read_text()
    start = time.monotonic()
    result = run_sandboxed(code, stdin="" if stdin is None else json.dumps(stdin), **limits)
    elapsed = time.monotonic() - start
    if result.uid is not None:  # as root: a uid of its own, whose processes must all be gone
        assert uid_processes(result.uid) == []
    return result, elapsed


# --- no sandbox needed ---------------------------------------------------------------------


def test_extract_code_strips_the_markdown_fence() -> None:
    text = "Read two numbers.\n```python\nprint(1)\n```\nThat's it."
    assert extract_code(Solution((text,))) == "print(1)\n"
    assert extract_code(Solution(("x = 1", "print(x)"))) == "x = 1\nprint(x)"
    two = "```\nold()\n```\nbetter:\n```py\nnew()\n```"
    assert extract_code(Solution((two,))) == "new()\n"


def test_outputs_compare_stripped_and_whitespace_normalised() -> None:
    assert same_output("1  2 \n3\n\n", " 1 2\n3")
    assert not same_output("1 2\n3", "1 2 3")
    assert not same_output("12", "1 2")


def test_syntax_error_names_the_line_without_running_anything() -> None:
    c = judge(ADD_IO, "a = 1\nprint(a +)\n")
    assert c.verdict == "incorrect" and c.first_error == 0 and c.score == 0.0
    assert [s.verdict for s in c.steps] == ["incorrect", "incorrect"]
    assert "syntax error at line 2" in c.feedback


@pytest.mark.parametrize("tests", [None, [], "", [{"input": "1"}], [{"input": 1, "output": "2"}],
                                   "assert f(1) ==", 7])
def test_bad_tests_are_an_input_error(tests: object) -> None:
    with pytest.raises(InputError, match=r"metadata\.tests"):
        judge(tests, "print(1)")


def test_no_unshare_means_refused_and_an_unscored_critique(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # `unshare` cannot be found
    result = run_sandboxed("print(1)")
    assert result.status == "refused" and "unshare" in result.message
    assert "network='allow'" in result.message
    c = judge(ADD_IO, ADD)
    assert c.verdict is None and c.score is None and c.first_error is None
    assert [s.verdict for s in c.steps] == ["unknown", "unknown"]
    assert "refused" in c.feedback


def test_without_namespaces_runs_only_when_everything_is_allowed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert run_sandboxed("print(1)", network="allow").status == "refused"
    result = run_sandboxed("print(1)", network="allow", filesystem="allow")
    # As root the code runs under a fresh uid, which may not reach this interpreter (say, one
    # under /root): then it is refused with the reason, never run as root.
    if result.status == "refused":
        assert "cannot start" in result.message
    else:
        assert (result.status, result.stdout) == ("ok", "1\n")


# --- the critic, in the sandbox ------------------------------------------------------------


def test_correct_code_passes(isolated: None) -> None:
    c = judge(ADD_IO, ADD)
    assert c.verdict == "correct" and c.first_error is None and c.score == 1.0
    assert [s.verdict for s in c.steps] == ["correct", "correct"]
    assert c.critic == "code" and c.feedback == "All tests passed (2/2)."


def test_wrong_output_shows_the_failing_test(isolated: None) -> None:
    c = judge(ADD_IO, "a, b = map(int, input().split())\nprint(a + b if a < 5 else a * b)\n")
    assert c.verdict == "incorrect" and c.first_error == 1 and c.score == 0.5
    assert c.steps[0].verdict == "correct"
    assert c.steps[1].explanation == (
        "wrong output for input '20  22\\n': expected '42', got '440\\n'")
    assert c.feedback.startswith("Test 1 failed (1/2 passed): wrong output for input")


def test_runtime_error_gives_the_exception_and_line(isolated: None) -> None:
    c = judge(ADD_IO, "a, b = map(int, input().split())\nprint(a // (b - 2))\n")
    assert c.first_error == 0 and c.steps[1].explanation.startswith("wrong output")
    assert c.steps[0].explanation == (
        "runtime error at line 2: ZeroDivisionError: integer division or modulo by zero")


def test_timeout_is_stopped_in_time(isolated: None) -> None:
    start = time.monotonic()
    c = judge([{"input": "", "output": "1"}], "while True:\n    pass\n",
              critic=CodeCritic(timeout=2, cpu_seconds=30))
    assert time.monotonic() - start < 2 + 2
    assert c.verdict == "incorrect"
    assert c.steps[0].explanation == "timed out: wall-clock limit of 2 s reached"


def test_markdown_fence_is_stripped_before_running(isolated: None) -> None:
    answer = f"Here is my solution:\n\n```python\n{ADD}```\n\nIt adds the two numbers."
    assert judge(ADD_IO, answer).verdict == "correct"


ASSERTS = """from math import isclose
assert add(1, 2) == 3
assert add(2, 2) == 5
assert isclose(add(0.1, 0.2), 0.3)
assert add(-1, 1) == 0, "inverse"
"""


def test_assert_tests_one_step_per_assert(isolated: None) -> None:
    c = judge(ASSERTS, "def add(a, b):", "    return a + b")
    assert [s.verdict for s in c.steps] == ["correct", "incorrect", "correct", "correct"]
    assert c.first_error == 1 and c.score == 0.75
    assert c.steps[1].explanation == "assert failed: assert add(2, 2) == 5: expected 5, got 4"
    assert "Test 1 failed" in c.feedback


def test_assert_tests_runtime_error_and_early_exit(isolated: None) -> None:
    c = judge(ASSERTS, "def add(a, b):\n    return a / 0\n")
    assert c.steps[0].explanation.startswith(
        "runtime error at line 2: ZeroDivisionError: division by zero (in test: assert add(1, 2)")
    # exit() before the tests ran is a failure, not a pass
    c = judge(ASSERTS, "import sys\nsys.exit(0)\ndef add(a, b):\n    return a + b\n")
    assert c.verdict == "incorrect" and c.score == 0.0
    assert "called exit()" in c.steps[0].explanation


def test_assert_tests_stop_at_a_hanging_test(isolated: None) -> None:
    code = "def add(a, b):\n    while a == 2:\n        pass\n    return a + b\n"
    c = judge(ASSERTS, code, critic=CodeCritic(timeout=2))
    assert [s.verdict for s in c.steps] == ["correct", "incorrect", "unknown", "unknown"]
    assert c.steps[1].explanation.startswith("timed out: wall-clock limit of 2 s reached")


def test_humaneval_check_function_and_mbpp_list(isolated: None) -> None:
    check = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 5\n"
    c = judge(check, "def add(a, b):\n    return a + b\n", entry_point="add")
    assert len(c.steps) == 1 and c.verdict == "incorrect"
    assert c.steps[0].explanation == "assert failed: assert candidate(2, 2) == 5"
    c = judge(["assert add(1, 2) == 3", "assert add(1, 1) == 2"], "def add(a, b): return a + b")
    assert c.verdict == "correct" and len(c.steps) == 2


async def test_critiques_run_concurrently(isolated: None) -> None:
    critic = CodeCritic()
    wrong = "a, b = map(int, input().split())\nprint(a - b)\n"
    found = await asyncio.gather(*(critic.critique(problem(ADD_IO), Solution((code,)))
                                   for code in (ADD, wrong, ADD, wrong)))
    assert [c.verdict for c in found] == ["correct", "incorrect"] * 2


# --- the sandbox itself --------------------------------------------------------------------


def test_minimal_environment_and_private_directory(
    isolated: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("CRITICLAB_TEST_SECRET", "hunter2")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = ("import os, tempfile\nprint(sorted(os.environ))\nprint(os.getcwd())\n"
            "print(os.path.expanduser('~'), tempfile.gettempdir(), os.getuid() == 0)\n")
    result = run_sandboxed(code)
    assert result.status == "ok", result
    keys, cwd, where = result.stdout.splitlines()
    assert "CRITICLAB_TEST_SECRET" not in keys and "hunter2" not in result.stdout
    home, tmp, is_root = where.split()
    assert home == cwd and tmp.startswith(cwd) and is_root == "False"
    assert list(tmp_path.iterdir()) == []  # the temporary directory is deleted after


@pytest.mark.slow
def test_hostile_fork_bomb(isolated: None) -> None:
    result, elapsed = run_hostile("fork_bomb", timeout=3)
    assert result.status == "timeout" and result.returncode is None
    assert elapsed < 3 + 2


@pytest.mark.slow
def test_hostile_memory_bomb(isolated: None) -> None:
    result, elapsed = run_hostile("memory_bomb", memory_mb=256)
    assert result.status == "memory", result
    assert elapsed < 10


@pytest.mark.slow
def test_hostile_memory_spread_over_processes(isolated: None) -> None:
    result, elapsed = run_hostile("memory_fork_bomb", memory_mb=256, timeout=8)
    assert result.status == "memory", result
    assert "256 MiB together" in result.message
    assert elapsed < 10


def test_hostile_infinite_loop_wall_clock_and_cpu(isolated: None) -> None:
    result, elapsed = run_hostile("infinite_loop", timeout=2, cpu_seconds=30)
    assert (result.status, result.message) == ("timeout", "wall-clock limit of 2 s reached")
    assert elapsed < 2 + 2
    result, elapsed = run_hostile("infinite_loop", timeout=20, cpu_seconds=1)
    assert (result.status, result.message) == ("timeout", "CPU time limit of 1 s reached")
    assert elapsed < 1 + 2 + 2


def test_hostile_write_outside_its_directory(isolated: None, tmp_path: Path) -> None:
    name = f"criticlab-escape-{secrets.token_hex(6)}"
    targets = [Path("/tmp") / name, REPO / name, tmp_path / name]
    try:
        for target in targets:
            result, _ = run_hostile("write_outside", {"path": str(target)})
            # /tmp inside the sandbox is its own throwaway tmpfs; the others do not exist there
            assert result.status in ("ok", "runtime_error"), result
            if target.parent != Path("/tmp"):
                assert result.status == "runtime_error"
                assert "FileNotFoundError" in result.message
            assert not target.exists()
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


def test_hostile_read_home(isolated: None) -> None:
    secret = secrets.token_hex(16)  # the content; the file name is printed in the error
    path = Path.home() / f".criticlab-secret-{secrets.token_hex(4)}"
    try:
        path.write_text(secret)
    except OSError:
        pytest.skip(f"cannot write into {Path.home()}")
    try:
        result, _ = run_hostile("read_home", {"path": str(path)})
    finally:
        path.unlink()
    assert result.status == "runtime_error" and "FileNotFoundError" in result.message
    assert secret not in result.stdout + result.stderr
    assert "home is /sandbox" in result.stdout


def listening_server() -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    return server


def connections(server: socket.socket) -> int:
    count = 0
    while True:  # the kernel completes connections into the backlog without accept()
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_hostile_network_connection(isolated: None) -> None:
    with listening_server() as server:
        port = server.getsockname()[1]
        result, _ = run_hostile("connect", {"port": port})
        assert result.status == "runtime_error"
        assert "Network is unreachable" in result.message
        assert connections(server) == 0
        # The same program with the network allowed does connect: the check above can fail.
        allowed, _ = run_hostile("connect", {"port": port}, network="allow")
        assert allowed.status == "ok" and allowed.stdout == "connected\n"
        assert connections(server) == 1


def test_hostile_network_through_the_critic(isolated: None) -> None:
    with listening_server() as server:
        code = (HOSTILE / "connect.py").read_text()
        stdin = json.dumps({"port": server.getsockname()[1]})
        c = judge([{"input": stdin, "output": "connected"}], code)
        assert connections(server) == 0
    assert c.verdict == "incorrect"
    assert c.steps[0].explanation.endswith("OSError: [Errno 101] Network is unreachable")


def test_hostile_huge_output(isolated: None) -> None:
    result, elapsed = run_hostile("huge_output", output_limit=20_000)
    assert result.status == "output_limit" and result.returncode is None
    assert 0 < len(result.stdout) + len(result.stderr) <= 20_000
    assert elapsed < 5 + 2


def test_hostile_orphan_is_killed_with_the_run(isolated: None) -> None:
    result, _ = run_hostile("orphan")
    assert (result.status, result.stdout) == ("ok", "left a daemon behind\n")
    # run_hostile checked that no process of the sandbox uid survived the run
