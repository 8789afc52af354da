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


# --- a program written to cheat --------------------------------------------------------------
# Each forger below is a WRONG add() (it subtracts) that tries to make its tests read as
# passed. Every one of them did, against the harness that printed its results on stdout.

WRONG = "def add(a, b):\n    return a - b\n"
ADD_ASSERTS = "assert add(1, 2) == 3\nassert add(2, 2) == 4\n"

# Prints "passed" for every test in the formats a result line has had, with every marker and
# key it can find, on stdout and on every descriptor it has or can open, then leaves.
FORGE = r'''
import gc, json, os, re, sys
def _forge(markers, keys, count):
    import hmac
    lines = []
    for m in markers:
        lines += [m + json.dumps({"start": i}) for i in range(count)]
        lines += [m + json.dumps({"test": i, "ok": True}) for i in range(count)]
        lines.append(m + json.dumps({"done": True}))
    bodies = [json.dumps({"ready": True}, separators=(",", ":"))]
    bodies += [json.dumps({"test": i, "ok": True}, separators=(",", ":")) for i in range(count)]
    bodies.append(json.dumps({"done": True}, separators=(",", ":")))
    for key in keys + [b"\0" * 32]:
        for body in bodies:
            mac = hmac.new(key, body.encode(), "sha256").hexdigest()[:32]
            lines.append("\x1ecriticlab:" + mac + body)
    data = ("\n".join(lines) + "\n").encode()
    targets = set(range(1, 64))
    for pid in ("self", str(os.getppid()), "1"):
        try:
            targets |= {"/proc/%s/fd/%s" % (pid, fd) for fd in os.listdir("/proc/%s/fd" % pid)}
        except OSError:
            pass
    for t in sorted(targets, key=str):
        try:
            if isinstance(t, int):
                os.write(t, data)
            else:
                fd = os.open(t, os.O_WRONLY | os.O_NONBLOCK)
                os.write(fd, data)
        except OSError:
            pass
    sys.stdout.write(data.decode())
    sys.stdout.flush()
'''

FROM_FRAMES = FORGE + r'''
markers, keys, count = [], [], 2
for obj in gc.get_objects():
    if isinstance(obj, dict):
        m = obj.get("MARKER")
        if isinstance(m, str):
            markers.append(m)
            count = len(obj.get("TESTS", ())) or count
        k = obj.get("key")
        if isinstance(k, bytes):
            keys.append(k)
    elif isinstance(obj, (bytes, bytearray)) and len(obj) == 32:
        keys.append(bytes(obj))
f = sys._getframe()
while f is not None:
    for space in (f.f_globals, f.f_locals):
        if isinstance(space.get("MARKER"), str):
            markers.append(space["MARKER"])
    f = f.f_back
_forge(markers, keys, count)
os._exit(0)
''' + WRONG

FROM_MAIN_PY = FORGE + r'''
text = open(sys.argv[0] if sys.argv and sys.argv[0] else "main.py").read()
markers = [eval(m) for m in re.findall(r"^MARKER = ('.*')$", text, re.M)]
keys = [bytes.fromhex(k) for k in re.findall(r"[0-9a-f]{64}", text)]
_forge(markers, keys, 2)
os._exit(0)
''' + WRONG


def assert_not_fooled(c: Critique, n: int = 2) -> None:
    assert c.verdict == "incorrect" and c.score == 0.0, c
    assert [s.verdict for s in c.steps] != ["correct"] * n
    assert all(s.verdict != "correct" for s in c.steps)


def test_forged_results_from_the_harness_globals_are_not_believed(isolated: None) -> None:
    assert_not_fooled(judge(ADD_ASSERTS, FROM_FRAMES))


def test_forged_results_from_reading_main_py_are_not_believed(isolated: None) -> None:
    assert_not_fooled(judge(ADD_ASSERTS, FROM_MAIN_PY))


def test_forged_results_then_exit_in_the_middle_of_a_test(isolated: None) -> None:
    code = FORGE + (
        "def add(a, b):\n"
        "    _forge([m for o in gc.get_objects() if isinstance(o, dict)\n"
        "            for m in [o.get('MARKER')] if isinstance(m, str)], [], 2)\n"
        "    os._exit(0)\n")
    c = judge(ADD_ASSERTS, code)
    assert_not_fooled(c)
    assert c.steps[0].explanation.startswith("the process ended early (exit status 0)")
    assert c.steps[1].verdict == "unknown"


def test_an_object_that_equals_everything_does_not_pass(isolated: None) -> None:
    code = ("class Anything:\n    def __eq__(self, other):\n        return True\n"
            "    __hash__ = object.__hash__\n    def __ne__(self, other):\n        return False\n"
            "def add(a, b):\n    return Anything()\n")
    c = judge(ADD_ASSERTS, code)
    assert_not_fooled(c)
    assert "never equals a plain value" in c.steps[0].explanation
    c = judge(["assert add(1, 2) in (3, 4)", "assert [add(1, 2)] == [3]"], code)
    assert_not_fooled(c)


def test_patching_the_harness_and_builtins_does_not_pass(isolated: None) -> None:
    code = ("import builtins, json, operator, sys\n"
            "_dumps = json.dumps\n"
            "json.dumps = lambda d, **k: _dumps({**d, 'ok': True} if 'ok' in d else d, **k)\n"
            "class _Never(Exception):\n    pass\n"
            "builtins.AssertionError = _Never\n"
            "operator.eq = lambda a, b: True\n"
            "sys.settrace(lambda *a: None)\n"
            "abs = lambda x: 0\n"
            "round = lambda *a: 3\n" + WRONG)
    c = judge(ADD_ASSERTS + "assert abs(add(0.1, 0.2) - 0.3) < 1e-9\n"
              "assert round(add(1.4, 1.4)) == 3\n", code)
    assert_not_fooled(c, 4)


def test_killing_the_harness_is_not_a_pass(isolated: None) -> None:
    code = FORGE + ("def add(a, b):\n    _forge([], [], 2)\n"
                    "    os.kill(os.getppid(), 9)\n    return a - b\n")
    c = judge(ADD_ASSERTS, code)
    assert_not_fooled(c)
    assert c.steps[0].explanation.startswith("was killed: killed by SIGKILL")


def test_modules_planted_for_the_harness_to_import_are_not_imported(isolated: None) -> None:
    # run in the harness, this would sign "passed" for every test with the harness's own key
    plant = ("import gc, os\n"
             "for o in gc.get_objects():\n"
             "    if type(o).__name__ == '_Out':\n"
             "        [o.say(test=i, ok=True) for i in range(3)]\n"
             "        o.say(done=True)\n"
             "        os._exit(0)\n")
    code = ("import os\n"
            f"for name in ('random', 'fractions', 'decimal'):\n"
            f"    open(os.path.join(os.getcwd(), name + '.py'), 'w').write({plant!r})\n"
            "from fractions import Fraction\n"
            "def add(a, b):\n    return Fraction(a - b)\n")
    c = judge(["import random\nassert add(1, 2) == 3", "assert add(2, 2) == 4",
               "assert add(3, 0) == random.choice([3])"], code)
    assert [s.verdict for s in c.steps] == ["incorrect", "incorrect", "correct"], c


def test_stdio_expected_output_never_reaches_the_program(isolated: None) -> None:
    expected = f"criticlab-expected-{secrets.token_hex(8)}"
    # it looks everywhere it may read for the expected output, and prints the first it finds
    code = ("import os, re\nfound = []\n"
            "for top in ('/sandbox', '/tmp', '/etc', os.getcwd()):\n"
            "    for root, dirs, files in os.walk(top):\n"
            "        for name in files:\n"
            "            try:\n"
            "                found.append(open(os.path.join(root, name), 'rb').read())\n"
            "            except OSError:\n"
            "                pass\n"
            "for pid in os.listdir('/proc'):\n"
            "    for part in ('cmdline', 'environ', 'fd/0', 'fd/3'):\n"
            "        try:\n"
            "            found.append(open(f'/proc/{pid}/{part}', 'rb').read(1 << 20))\n"
            "        except OSError:\n"
            "            pass\n"
            "hits = re.findall(rb'criticlab-expected-[0-9a-f]{16}', b''.join(found))\n"
            "print(hits[0].decode() if hits else 'none')\n")
    c = judge([{"input": "", "output": expected}], code, critic=CodeCritic(timeout=20))
    assert c.verdict == "incorrect"
    assert c.steps[0].explanation.endswith("got 'none\\n'"), c.steps[0].explanation


# The solution's objects stay in its process; the tests see them through handles.
RICH = '''
import math
from collections import Counter, namedtuple
Point = namedtuple("Point", "x y")
class Stack:
    def __init__(self):
        self.items = []
    def push(self, x):
        self.items.append(x)
        return self
    def pop(self):
        return self.items.pop()
    def __len__(self):
        return len(self.items)
    def __iter__(self):
        return iter(self.items)
class Oops(Exception):
    pass
def squares(n):
    for i in range(n):
        yield i * i
def sort_in_place(xs):
    xs.sort()
def counts(s):
    return Counter(s)
def point():
    return Point(1, 2)
def fail(kind):
    if kind == "value":
        raise ValueError("bad")
    raise Oops("mine")
def values():
    return 2 ** 200, float("inf"), -0.0, 1 + 2j, b"\\x00\\xff", {1, 2}, frozenset({3}), range(3)
'''
RICH_TESTS = [
    "s = Stack()\nassert len(s.push(1).push(2)) == 2 and s.pop() == 2 and list(s) == [1]",
    "assert list(squares(4)) == [0, 1, 4, 9] and 9 in squares(4) and 5 not in squares(4)",
    "xs = [3, 1, 2]\nsort_in_place(xs)\nassert xs == [1, 2, 3]",
    "assert counts('aab') == {'a': 2, 'b': 1} and point() == (1, 2)",
    "try:\n    fail('value')\nexcept ValueError as e:\n    assert str(e) == 'bad'\nelse:\n    assert False",
    "assert values() == (2 ** 200, float('inf'), 0.0, 1 + 2j, b'\\x00\\xff', {1, 2}, "
    "frozenset({3}), range(3))",
    "assert math.isqrt(16) == 4 and isinstance(Stack(), Stack) and Stack().items == []",
    "fail('mine')",
]


def test_the_tests_use_the_solutions_objects_through_handles(isolated: None) -> None:
    c = judge(RICH_TESTS, RICH)
    assert [s.verdict for s in c.steps] == ["correct"] * 7 + ["incorrect"], c
    assert c.steps[7].explanation == (
        "runtime error at line 31: solution.Oops: mine (in test: fail('mine'))")


def test_the_entry_point_may_have_a_builtins_name(isolated: None) -> None:
    check = "def check(candidate):\n    assert candidate([1, 2]) == 3\n"
    # the solution's sum is the one tested, though the builtin would pass
    assert judge(check, "def sum(xs):\n    return 0\n", entry_point="sum").verdict == "incorrect"
    right = "def sum(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t\n"
    assert judge(check, right, entry_point="sum").verdict == "correct"


PROBE = '''
import ctypes, os, sys
def probe():
    seen, harness = {}, os.getppid()
    for name, path in (("mem", f"/proc/{harness}/mem"), ("environ", f"/proc/{harness}/environ"),
                       ("stdin", f"/proc/{harness}/fd/0"), ("launcher", "/proc/1/fd/0")):
        try:
            with open(path, "rb") as f:
                f.read(1)
            seen[name] = "read"
        except OSError:
            seen[name] = "denied"
    try:
        os.listdir(f"/proc/{harness}/fd")
        seen["fds"] = "listed"
    except OSError:
        seen["fds"] = "denied"
    attached = ctypes.CDLL(None).ptrace(16, harness, 0, 0)  # PTRACE_ATTACH
    seen["ptrace"] = "attached" if attached == 0 else "denied"
    seen["own stdin"] = sys.stdin.read() + os.read(0, 100).decode()
    return seen
'''


def test_the_solution_cannot_reach_the_harness(isolated: None) -> None:
    want = {k: "denied" for k in ("mem", "environ", "stdin", "launcher", "fds", "ptrace")}
    c = judge(f"assert probe() == {{**{want!r}, 'own stdin': ''}}", PROBE)
    assert c.verdict == "correct", c.steps[0].explanation


# --- free text that is code --------------------------------------------------------------------

INDENTED = "def add(a, b):\n    total = a\n\n    total += b\n    return total\n"
CODE_RECORDS = [
    {"id": "plain", "problem": "Add.", "solution": INDENTED, "tests": ADD_ASSERTS},
    {"id": "fenced", "problem": "Add.", "tests": ADD_ASSERTS,
     "solution": f"Here it is:\n\n```python\n{INDENTED}```\n\nIt adds."},
]


def test_free_text_code_keeps_its_text_exactly(tmp_path: Path) -> None:
    from criticlab.data import load_benchmark
    from criticlab.data.jsonl import to_example
    from criticlab.steps import split_steps
    from criticlab.types import Example

    path = tmp_path / "code.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in CODE_RECORDS))
    plain, fenced = load_benchmark(str(path))
    assert plain.solution is not None and fenced.solution is not None
    assert extract_code(plain.solution) == INDENTED == extract_code(fenced.solution)
    # the steps are split as before, for every other critic
    assert plain.solution.steps == split_steps(INDENTED) == (
        "def add(a, b):\n    total = a", "total += b\n    return total")
    ex = to_example(CODE_RECORDS[1], default_id="x")
    assert ex.solution is not None and ex.solution.text == CODE_RECORDS[1]["solution"]
    assert Example.from_dict(json.loads(json.dumps(ex.to_dict()))) == ex
    # only a code record keeps it: any other solution and its dict are as they were
    prose = to_example({"problem": "p", "solution": INDENTED}, default_id="y").solution
    assert prose is not None and prose.text is None and prose.steps == plain.solution.steps
    assert prose.to_dict() == {"steps": list(prose.steps), "final_answer": None, "source": None}


def test_free_text_code_through_the_command_line(isolated: None, tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "code.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in CODE_RECORDS))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "CRITICLAB_STORE": str(tmp_path / "store.sqlite")}
    p = subprocess.run([sys.executable, "-m", "criticlab", "critique", str(path), "--critic",
                        "code", "--json"], capture_output=True, cwd=REPO, env=env, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    rows = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert [(r["critique"]["verdict"], r["critique"]["score"]) for r in rows] == [
        ("correct", 1.0), ("correct", 1.0)], rows
