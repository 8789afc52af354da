"""The code verifier: run a candidate program against the problem's tests in a sandbox
(:mod:`criticlab.critics.sandbox`) and say which test fails and how.

``problem.metadata["tests"]`` holds the tests, in one of three forms:

* a list of ``{"input": str, "output": str}``: the program reads ``input`` on stdin and must
  print ``output``; outputs are compared stripped, with whitespace normalised within each line.
  Each test is a separate run.
* a string of Python (HumanEval/MBPP style): each top-level ``assert`` is one test, together
  with the statements before it (imports, helpers). A string without top-level asserts is one
  test; if it defines ``check(candidate)`` without calling it and the problem's metadata has an
  ``entry_point``, ``check(<entry_point>)`` is that test. One run executes the code, then each
  test in turn; the code is run as module ``solution``, so its ``if __name__ == "__main__"``
  block does not run (as in HumanEval).
* a list of strings: each string is one test, as above.

The solution's code is ``solution.text`` when it has one (a code record's free text, kept
because its split steps lose the indentation), else ``"\\n".join(solution.steps)``; when it
holds a fenced block (```` ```python ````), the last such block is the code.

The critique has one step per TEST (not per solution step): ``first_error`` is the first
failing test, the verdict is "incorrect" when any test fails, ``score`` is the share that
passed. When the sandbox refuses to run (no isolation available), the critique is unscored
(verdict ``None``), never "incorrect".

Oracle rule: the tests come with the problem from the user, so no oracle flag is needed. But
the feedback quotes the failing test (its input, the expected and actual output): tests held
back for scoring (hidden tests) must never reach a language model, so do not feed this
critic's feedback on hidden tests into a refine loop or a prompt; use public tests there.

A defence against a program written to cheat (as an RL reward must be): nothing the code can
do, in an isolated run, makes a failing test read as passed. A stdin/stdout test is judged
here, on the program's output, and its expected output never enters the sandbox. Assert tests
run in :mod:`criticlab.critics.code_harness`: the solution's code runs in a child process of
the harness, which runs each test itself, so every comparison is the harness's, on plain
values (an object of the solution's never equals one, a name of the solution's never hides a
builtin; only two of its own objects compare by its ``__eq__``, as a test of them asks); the
child never sees an expected value, the harness's memory or descriptors, or the key that
signs each result line; a line it prints, a process it kills, an exit it takes only ever
leaves a test without a result, and such a test has failed. The limit: where the sandbox runs
the code as the critic's own user with no namespaces (``network="allow"`` and
``filesystem="allow"`` on a machine without them, not as root), the code can reach the
critic's process, and none of this holds. What a test may pass to the solution: plain values
and the solution's own objects (not a lambda or an object of the test's).
"""

from __future__ import annotations

import ast
import asyncio
import functools
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from criticlab.critics.sandbox import SandboxResult, run_sandboxed
from criticlab.errors import InputError
from criticlab.types import Critique, Problem, Solution, StepVerdict, Verdict

__all__ = ["CodeCritic", "extract_code", "same_output"]

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_MAIN_LINE = re.compile(r'File "[^"]*main\.py", line (\d+)')
_RECORD = re.compile(r"\x1ecriticlab:([0-9a-f]{32})(\{[^\n]*\})\n")
_SHOW = 200  # characters of an input or output quoted in an explanation


@dataclass(frozen=True)
class _StdioTest:
    input: str
    output: str


@dataclass(frozen=True)
class _AssertTest:
    source: str  # shown in explanations
    setup: str  # statements run first (for a bare assert, the assert itself)
    left: str | None = None  # for `assert L == R`: evaluated apart, to report both values
    right: str | None = None


@dataclass(frozen=True)
class _Outcome:
    verdict: Verdict
    explanation: str


def extract_code(solution: Solution) -> str:
    """The program in a solution: the last ```python (or unlabelled) fenced block of its text
    (``solution.text``, else its joined steps), else that text itself."""
    text = solution.text if solution.text is not None else "\n".join(solution.steps)
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    python = [b for lang, b in blocks if lang in ("python", "py", "python3")]
    plain = [b for lang, b in blocks if not lang]
    chosen = python or plain
    return chosen[-1].strip("\n") + "\n" if chosen else text


def same_output(got: str, expected: str) -> bool:
    """Outputs equal after stripping, line by line with runs of whitespace made one space."""
    return _normal(got) == _normal(expected)


def _normal(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.strip().splitlines()]


class CodeCritic:
    """Runs the solution's code against ``problem.metadata["tests"]`` in a sandbox. The limits
    apply to each run (one per stdin test; one for all assert tests). ``network`` and
    ``filesystem`` are passed to :func:`~criticlab.critics.sandbox.run_sandboxed`: "isolate"
    refuses to run where the machine cannot isolate the code."""

    name = "code"

    def __init__(
        self, *, timeout: float = 5.0, cpu_seconds: int = 5, memory_mb: int = 512,
        file_size_mb: int = 10, max_processes: int = 32, output_limit: int = 64_000,
        network: Literal["isolate", "allow"] = "isolate",
        filesystem: Literal["isolate", "allow"] = "isolate",
    ) -> None:
        self.limits: dict[str, Any] = {
            "timeout": timeout, "cpu_seconds": cpu_seconds, "memory_mb": memory_mb,
            "file_size_mb": file_size_mb, "max_processes": max_processes,
            "output_limit": output_limit, "network": network, "filesystem": filesystem,
        }

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        tests = _load_tests(problem)
        code = extract_code(solution)
        try:
            compile(code, "solution.py", "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as e:
            line = getattr(e, "lineno", None)
            where = f" at line {line}" if line else ""
            why = f"syntax error{where}: {getattr(e, 'msg', None) or e}"
            return self._critique([_Outcome("incorrect", why)] * len(tests), tests, why)
        if tests and isinstance(tests[0], _StdioTest):
            outcomes: list[_Outcome] = []
            for test in tests:
                assert isinstance(test, _StdioTest)
                result = await asyncio.to_thread(run_sandboxed, code, stdin=test.input,
                                                 **self.limits)
                if result.status == "refused":
                    return self._refused(tests, result)
                outcomes.append(_judge_stdio(test, result))
            return self._critique(outcomes, tests, "")
        asserts = [t for t in tests if isinstance(t, _AssertTest)]
        key = secrets.token_bytes(32)
        stdin = _payload(code, asserts, key, problem.metadata.get("entry_point"))
        result = await asyncio.to_thread(run_sandboxed, _harness_source(), stdin=stdin,
                                         **self.limits)
        if result.status == "refused":
            return self._refused(tests, result)
        records = _records(result.stdout, key)
        refused = next((r for r in records if "refused" in r), None)
        if refused is not None:
            why = f"the harness cannot protect itself: {refused['refused']}"
            return self._refused(tests, SandboxResult("refused", None, "", "", 0.0, why))
        return self._critique(_judge_asserts(asserts, result, records), tests, "")

    def _critique(self, outcomes: Sequence[_Outcome], tests: Sequence[object],
                  raw: str) -> Critique:
        steps = tuple(StepVerdict(i, o.verdict, o.explanation,
                                  {"correct": 1.0, "incorrect": 0.0}.get(o.verdict))
                      for i, o in enumerate(outcomes))
        passed = sum(o.verdict == "correct" for o in outcomes)
        failed = [s for s in steps if s.verdict != "correct"]
        if not failed:
            feedback = f"All tests passed ({passed}/{len(steps)})."
        else:
            first = failed[0]
            feedback = (f"Test {first.index} failed ({passed}/{len(steps)} passed): "
                        f"{first.explanation}")
        return Critique(
            steps=steps, first_error=failed[0].index if failed else None,
            verdict="incorrect" if failed else "correct", feedback=feedback,
            score=passed / len(steps), raw=raw, critic=self.name,
        )

    def _refused(self, tests: Sequence[object], result: SandboxResult) -> Critique:
        why = f"not run: the sandbox refused ({result.message})"
        return Critique(steps=tuple(StepVerdict(i, "unknown", why) for i in range(len(tests))),
                        feedback=why, raw=result.message, critic=self.name)


def _load_tests(problem: Problem) -> list[_StdioTest] | list[_AssertTest]:
    tests = problem.metadata.get("tests")
    field = "metadata.tests"
    if isinstance(tests, str):
        return _split_asserts(tests, problem)
    if not isinstance(tests, list) or not tests:
        raise InputError(f"{problem.id}: expected a non-empty list of tests or a string of "
                         f"Python asserts, got {type(tests).__name__}", field=field)
    if all(isinstance(t, str) for t in tests):
        return [_one_assert(t, problem) for t in tests]
    stdio = []
    for i, t in enumerate(tests):
        if not (isinstance(t, Mapping) and isinstance(t.get("output"), str)
                and isinstance(t.get("input", ""), str)):
            raise InputError(f"{problem.id}: test {i} must be {{'input': str, 'output': str}}",
                             field=field)
        stdio.append(_StdioTest(t.get("input", ""), t["output"]))
    return stdio


def _parse(source: str, problem: Problem) -> list[ast.stmt]:
    if not source.strip():
        raise InputError(f"{problem.id}: a test is empty", field="metadata.tests")
    try:
        body = ast.parse(source).body
        compile(source, "tests", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        raise InputError(f"{problem.id}: the tests do not compile: {e}",
                         field="metadata.tests") from e
    return body


def _assert_test(source: str, setup: Sequence[ast.stmt], check: ast.Assert) -> _AssertTest:
    test = check.test
    before = "\n".join(ast.unparse(s) for s in setup)
    if (check.msg is None and isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return _AssertTest(source, before, ast.unparse(test.left),
                           ast.unparse(test.comparators[0]))
    return _AssertTest(source, "\n".join([before, ast.unparse(check)]).strip())


def _split_asserts(source: str, problem: Problem) -> list[_AssertTest]:
    body = _parse(source, problem)
    tests: list[_AssertTest] = []
    pending: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, ast.Assert):
            shown = ast.get_source_segment(source, stmt) or ast.unparse(stmt)
            tests.append(_assert_test(shown, pending, stmt))
            pending = []
        else:
            pending.append(stmt)
    entry = problem.metadata.get("entry_point")
    defines_check = any(isinstance(s, ast.FunctionDef) and s.name == "check" for s in body)
    calls_check = any(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
                      and isinstance(s.value.func, ast.Name) and s.value.func.id == "check"
                      for s in body)
    if defines_check and not calls_check and isinstance(entry, str) and entry.isidentifier():
        pending.append(ast.parse(f"check({entry})").body[0])
    if pending or not tests:
        shown = ast.unparse(pending[-1])
        tests.append(_AssertTest(shown, "\n".join(ast.unparse(s) for s in pending)))
    return tests


def _one_assert(source: str, problem: Problem) -> _AssertTest:
    body = _parse(source, problem)
    if body and isinstance(body[-1], ast.Assert):
        return _assert_test(source.strip(), body[:-1], body[-1])
    return _AssertTest(source.strip(), source)


def _short(text: str) -> str:
    return repr(text) if len(text) <= _SHOW else repr(text[:_SHOW]) + "..."


def _stopped(result: SandboxResult) -> str:
    kind = {"timeout": "timed out", "memory": "ran out of memory",
            "output_limit": "printed too much", "killed": "was killed"}.get(result.status)
    return f"{kind}: {result.message}" if kind else f"{result.status}: {result.message}"


def _runtime(error: str, line: int | None) -> str:
    return f"runtime error{f' at line {line}' if line else ''}: {error}"


def _judge_stdio(test: _StdioTest, result: SandboxResult) -> _Outcome:
    if result.status == "ok":
        if same_output(result.stdout, test.output):
            return _Outcome("correct", "passed")
        return _Outcome("incorrect", f"wrong output for input {_short(test.input)}: "
                                     f"expected {_short(test.output)}, got {_short(result.stdout)}")
    if result.status == "runtime_error":
        lines = _MAIN_LINE.findall(result.stderr)
        return _Outcome("incorrect", _runtime(result.message, int(lines[-1]) if lines else None))
    return _Outcome("incorrect", _stopped(result))


@functools.cache
def _harness_source() -> str:
    """The sandboxed program of the assert tests: the harness's three modules as one file."""
    here = Path(__file__).parent
    return "\n".join((here / f"code_{name}.py").read_text(encoding="utf-8")
                     for name in ("wire", "remote", "harness"))


def _payload(code: str, tests: Sequence[_AssertTest], key: bytes, entry: object) -> str:
    """The harness's stdin (see :mod:`criticlab.critics.code_harness`): the code, then the
    key and the tests, each as 10 digits of byte length and the text."""
    config = json.dumps({"key": key.hex(), "show": _SHOW,
                         "keep": [entry] if isinstance(entry, str) else [],
                         "tests": [(t.setup, t.left, t.right) for t in tests]})
    return "".join(f"{len(part.encode()):010d}{part}" for part in (code, config))


def _records(stdout: str, key: bytes) -> list[dict[str, Any]]:
    """The harness's result lines in ``stdout`` that carry the run key's signature; any other
    line (the solution's prints, a forgery) is ignored."""
    found = []
    for mac, body in _RECORD.findall(stdout):
        good = hmac.new(key, body.encode(), "sha256").hexdigest()[:32]
        if hmac.compare_digest(mac, good):
            try:
                value = json.loads(body)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def _judge_asserts(tests: Sequence[_AssertTest], result: SandboxResult,
                   reports: Sequence[Mapping[str, Any]]) -> list[_Outcome]:
    """Each test's outcome from the harness's signed records. A test without a result has
    failed (or, after the one the run stopped in, was not run): never passed."""
    setup = next((r for r in reports if r.get("stage") == "code"), None)
    if setup is not None or not any(r.get("ready") is True for r in reports):
        why = (_ended(result) if setup is None
               else f"the process ended early ({setup['gone']})" if "gone" in setup
               else f"it called exit() ({setup['error']})" if setup.get("type") == "SystemExit"
               else _runtime(str(setup.get("error")), setup.get("line")))
        return [_Outcome("incorrect", f"the code failed before the tests ran: {why}")] * len(tests)
    done: dict[int, Mapping[str, Any]] = {}
    for r in reports:
        if isinstance(r.get("test"), int):
            done.setdefault(r["test"], r)
    finished = any(r.get("done") is True for r in reports)
    outcomes: list[_Outcome] = []
    stopped = False
    for i, test in enumerate(tests):
        got = done.get(i)
        if got is None and stopped:
            outcomes.append(_Outcome("unknown", "not run: the run stopped at an earlier test"))
        elif got is None:
            stopped = True
            why = "no result came back for it" if finished else _ended(result)
            outcomes.append(_Outcome("incorrect", f"{why} (in test: {test.source})"))
        elif got.get("ok") is True:
            outcomes.append(_Outcome("correct", "passed"))
        else:
            stopped = stopped or "gone" in got
            outcomes.append(_Outcome("incorrect", _failure(test, got)))
    return outcomes


def _failure(test: _AssertTest, r: Mapping[str, Any]) -> str:
    if "gone" in r:
        return f"the process ended early ({r['gone']}) (in test: {test.source})"
    if "got" in r:
        note = f" ({r['note']})" if "note" in r else ""
        return f"assert failed: {test.source}: expected {r['expected']}, got {r['got']}{note}"
    if r.get("type") == "AssertionError":
        return f"assert failed: {_failing_line(test, r)}"
    return f"{_runtime(str(r.get('error')), r.get('line'))} (in test: {test.source})"


def _failing_line(test: _AssertTest, report: Mapping[str, Any]) -> str:
    """The assert that failed: the line the traceback names (inside a ``check`` function, say),
    with the assertion's message if it has one."""
    lines, at = test.setup.splitlines(), report.get("test_line")
    shown = lines[at - 1].strip() if isinstance(at, int) and 0 < at <= len(lines) else test.source
    message = str(report.get("error", "")).removeprefix("AssertionError").lstrip(": ")
    return f"{shown} ({message})" if message else shown


def _ended(result: SandboxResult) -> str:
    """Why a run ended early, for a run that stopped without reporting a test's result."""
    if result.status in ("ok", "runtime_error"):  # e.g. os._exit() or exit() in the code
        return f"the process ended early ({result.message or 'exit status 0'})"
    return _stopped(result)
