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

The solution's code is ``"\\n".join(solution.steps)``; when it holds a fenced block
(```` ```python ````), the last such block is the code.

The critique has one step per TEST (not per solution step): ``first_error`` is the first
failing test, the verdict is "incorrect" when any test fails, ``score`` is the share that
passed. When the sandbox refuses to run (no isolation available), the critique is unscored
(verdict ``None``), never "incorrect".

Oracle rule: the tests come with the problem from the user, so no oracle flag is needed. But
the feedback quotes the failing test (its input, the expected and actual output): tests held
back for scoring (hidden tests) must never reach a language model, so do not feed this
critic's feedback on hidden tests into a refine loop or a prompt; use public tests there.

Not a defence against a program written to cheat: code in the same process as the assert
tests could forge their results (as in HumanEval); the harness only catches the accidental
cases (``exit()`` before the tests, a test that ends the process).
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from criticlab.critics.sandbox import SandboxResult, run_sandboxed
from criticlab.errors import InputError
from criticlab.types import Critique, Problem, Solution, StepVerdict, Verdict

__all__ = ["CodeCritic", "extract_code", "same_output"]

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_MAIN_LINE = re.compile(r'File "[^"]*main\.py", line (\d+)')
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
    """The program in a solution: the last ```python (or unlabelled) fenced block of its
    joined steps, else the joined steps themselves."""
    text = "\n".join(solution.steps)
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
        program, marker = _harness(code, asserts)
        result = await asyncio.to_thread(run_sandboxed, program, **self.limits)
        if result.status == "refused":
            return self._refused(tests, result)
        return self._critique(_judge_asserts(asserts, result, marker), tests, "")

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


_HARNESS = """
import json as _json, os as _os, traceback as _tb
_out = _os.fdopen(_os.dup(1), "w")
def _say(**fields):
    _out.write(MARKER + _json.dumps(fields) + "\\n")
    _out.flush()
def _error(exc):
    frames = _tb.extract_tb(exc.__traceback__)
    lines = [f.lineno for f in frames if f.filename == "solution.py"]
    tests = [f.lineno for f in frames if f.filename == "test.py"]
    text = _tb.format_exception_only(type(exc), exc)[-1].strip()
    return {"error": text, "type": type(exc).__name__, "line": lines[-1] if lines else None,
            "test_line": tests[-1] if tests else None}
def _show(value):
    try:
        text = repr(value)
    except BaseException:
        text = "<unprintable>"
    return text if len(text) <= SHOW else text[:SHOW] + "..."
_g = {"__name__": "solution", "__builtins__": __builtins__}
try:
    exec(compile(CODE, "solution.py", "exec"), _g)
except BaseException as _e:
    _say(stage="code", **_error(_e))
    raise SystemExit(0)
for _i, (_setup, _left, _right) in enumerate(TESTS):
    _say(start=_i)
    try:
        exec(compile(_setup, "test.py", "exec"), _g)
        if _left is not None:
            _got = eval(compile(_left, "test.py", "eval"), _g)
            _want = eval(compile(_right, "test.py", "eval"), _g)
            if not _got == _want:
                _say(test=_i, ok=False, got=_show(_got), expected=_show(_want))
                continue
    except BaseException as _e:
        _say(test=_i, ok=False, **_error(_e))
    else:
        _say(test=_i, ok=True)
_say(done=True)
"""


def _harness(code: str, tests: Sequence[_AssertTest]) -> tuple[str, str]:
    marker = f"\x1ecriticlab-{secrets.token_hex(8)}:"
    table = [(t.setup, t.left, t.right) for t in tests]
    head = f"MARKER = {marker!r}\nSHOW = {_SHOW}\nCODE = {code!r}\nTESTS = {table!r}\n"
    return head + _HARNESS, marker


def _judge_asserts(tests: Sequence[_AssertTest], result: SandboxResult,
                   marker: str) -> list[_Outcome]:
    reports = [json.loads(m) for m in re.findall(re.escape(marker) + r"(\{[^\n]*\})\n",
                                                 result.stdout)]
    done = {r["test"]: r for r in reports if "test" in r}
    started = [r["start"] for r in reports if "start" in r]
    setup = next((r for r in reports if r.get("stage") == "code"), None)
    if setup is not None or not started:  # the code itself failed before any test ran
        why = (_ended(result) if setup is None else _runtime(setup["error"], setup["line"])
               if setup["type"] != "SystemExit" else f"it called exit() ({setup['error']})")
        return [_Outcome("incorrect", f"the code failed before the tests ran: {why}")] * len(tests)
    outcomes = []
    for i, test in enumerate(tests):
        r = done.get(i)
        if r is not None and r["ok"]:
            outcomes.append(_Outcome("correct", "passed"))
        elif r is not None and "got" in r:
            outcomes.append(_Outcome("incorrect", f"assert failed: {test.source}: "
                                                  f"expected {r['expected']}, got {r['got']}"))
        elif r is not None and r.get("type") == "AssertionError":
            outcomes.append(_Outcome("incorrect", f"assert failed: {_failing_line(test, r)}"))
        elif r is not None:
            outcomes.append(_Outcome("incorrect", f"{_runtime(r['error'], r['line'])} "
                                                  f"(in test: {test.source})"))
        elif i == started[-1]:
            outcomes.append(_Outcome("incorrect", f"{_ended(result)} (in test: {test.source})"))
        else:
            outcomes.append(_Outcome("unknown", "not run: the run stopped at an earlier test"))
    return outcomes


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
