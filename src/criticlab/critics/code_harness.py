"""The harness of the code critic's assert tests (:mod:`criticlab.critics.code`): the program
the sandbox runs as ``main.py``, made of :mod:`~criticlab.critics.code_wire`,
:mod:`~criticlab.critics.code_remote` and this module, one after the other in one file (their
imports of each other are skipped there). Standard library only, and nothing imported from
criticlab: it runs under ``python -I -S``.

The solution's code never runs in the process that decides the verdicts. Two processes:

* **The harness** (this one) reads the solution's code from stdin, makes itself undumpable
  (``PR_SET_DUMPABLE`` 0: no process of the sandbox's uid can ptrace it, read its memory or
  open its descriptors through /proc; without capabilities, which the sandbox never gives,
  nothing can), and forks:
* **the solution's process**, which trades stdin for /dev/null, closes every other descriptor
  but stdout, stderr and its two pipes to the harness, runs the code as module ``solution``,
  and from then on only answers the harness's requests (call this, get that attribute,
  iterate, ...). Its objects stay on its side; the harness holds handles to them.

Only after the fork does the harness read the rest of stdin: the run's key and the tests. It
runs every test itself, with the solution's names bound to handles, so a test's comparisons
are made by the harness on values decoded into its own plain types (None, bool, int, float,
complex, str, bytes, and lists, tuples, dicts, sets, ranges, Fractions, Decimals of them),
with its own ``==``: an object of the solution's never equals a plain value, and no name of
the solution's hides a builtin (except the entry point) or a module (the harness imports its
own). The solution's process learns a test's inputs, never its expected values.

Each result goes out as one line on stdout, ``\\x1ecriticlab:MAC{json}``, MAC being the first
32 hex digits of HMAC-SHA256 of the JSON under the key. The solution's process shares stdout
but never had the key, nor any way to the rest of stdin: it can add lines or swallow some,
which only ever leaves a test without a result (judged failed), never forge one.

stdin: two frames, each 10 ASCII digits (the byte length) then that many bytes: the code
(UTF-8), then JSON ``{"key": HEX, "show": N, "keep": [NAME], "tests": [[SETUP, LEFT, RIGHT]]}``
(LEFT and RIGHT are ``None`` unless the test is ``assert LEFT == RIGHT``). Records:
``ready`` (the code ran), ``stage: "code"`` (it did not), ``test: i, ok`` (with ``got`` and
``expected``, or ``error``, ``type``, ``line``, ``test_line``, or ``gone``: the solution's
process died), ``done``, ``refused`` (the harness could not protect itself).
"""

import builtins
import contextlib
import hmac
import importlib
import json
import math
import operator
import os
import signal
import sys
import traceback
from typing import Any

if __name__ != "__main__":  # in criticlab; in the sandbox the three files are one program
    from criticlab.critics.code_remote import _fields, _Gone, _Link, _Remote
    from criticlab.critics.code_wire import (
        _BINARY,
        _CAP,
        _TEXT,
        _decode,
        _describe,
        _encode,
        _read_frame,
        _recv,
        _send,
    )


# --- the solution's process -------------------------------------------------------------------

_OPS: dict[str, Any] = {name: getattr(operator, name.rstrip("_") + ("_" if name in
                                                                   ("and", "or") else ""))
                        for name in _BINARY}
_OPS.update({f"i{name}": getattr(operator, f"i{name}") for name in _BINARY})
_OPS.update(
    pow=pow, eq=operator.eq, ne=operator.ne, lt=operator.lt, le=operator.le, gt=operator.gt,
    ge=operator.ge, neg=operator.neg, pos=operator.pos, abs=abs, invert=operator.invert,
    getitem=operator.getitem, setitem=operator.setitem, delitem=operator.delitem, len=len,
    truth=bool, repr=repr, str=str, format=format, hash=hash, iter=iter, next=next, int=int,
    float=float, index=operator.index, complex=complex, round=round, floor=math.floor,
    ceil=math.ceil, trunc=math.trunc, reversed=reversed, isinstance=isinstance,
    issubclass=issubclass, getattr=getattr, setattr=setattr, delattr=delattr,
)


def _solution_process(code: bytes, requests: int, replies: int) -> None:
    """The forked child: give up every way back to the harness but the two pipes, run the
    code, then serve requests until the harness closes its end. Never returns."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    keep = {0, 1, 2, requests, replies}
    for fd in [int(f) for f in os.listdir("/proc/self/fd")]:
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    table: list[Any] = []
    ids: dict[int, int] = {}

    def ref(value: Any) -> dict[str, Any]:
        at = ids.get(id(value))
        if at is None:
            at = ids[id(value)] = len(table)
            table.append(value)
        return {"h": [at, str(type(value).__name__)[:_TEXT]]}

    def deref(body: Any) -> Any:
        return table[body]

    names = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(compile(code.decode(), "solution.py", "exec"), names)
        found: dict[str, Any] = {}
        for name, value in list(names.items()):
            if name.startswith("__"):
                continue
            if type(value) is type(sys):
                found[name] = {"module": str(value.__name__)}
                continue
            found[name] = _encode(value, ref)
            if len(json.dumps(found[name])) > _CAP // 64:  # a big table: by handle
                found[name] = ref(value)
        _send(replies, {"names": found})
    except BaseException as e:
        _send(replies, {"stage": _describe(e)})
        _flush()
        os._exit(0)
    while True:
        try:
            request = _recv(requests)
        except BaseException:
            break
        try:
            reply = _serve(request, ref, deref)
        except StopIteration:
            reply = {"stop": True}
        except BaseException as e:
            reply = {"raised": _describe(e)}
        try:
            _send(replies, reply)
        except BaseException as e:
            _send(replies, {"raised": _describe(e)})
    _flush()
    os._exit(0)


def _serve(request: list[Any], ref: Any, deref: Any) -> dict[str, Any]:
    op = request[0]
    if op == "call":  # [call, target, args, kwargs, the positions of args to send back]
        target, args, kwargs = (_decode(x, deref) for x in request[1:4])
        reply = {"ok": _encode(target(*args, **kwargs), ref)}
        if request[4]:  # what the call did to them (a list sorted in place, say)
            reply["back"] = [_encode(args[i], ref) for i in request[4]]
        return reply
    return {"ok": _encode(_OPS[op](*(_decode(x, deref) for x in request[1])), ref)}


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


# --- the harness ------------------------------------------------------------------------------


class _Out:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def say(self, **fields: Any) -> None:
        """One signed line, written at once (under PIPE_BUF, so no other write splits it)."""
        for cap in (_TEXT, 60, 8):
            body = json.dumps({k: v[:cap] if isinstance(v, str) else v
                               for k, v in fields.items()}, separators=(",", ":"))
            if len(body) < 3800:
                break
        mac = hmac.new(self.key, body.encode(), "sha256").hexdigest()[:32]
        line = f"\x1ecriticlab:{mac}{body}\n".encode()
        while line:
            line = line[os.write(1, line):]


def _undumpable() -> str | None:
    """Make this process undumpable, or say why it cannot be."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
            return f"prctl(PR_SET_DUMPABLE): {os.strerror(ctypes.get_errno())}"
        if libc.prctl(3, 0, 0, 0, 0) != 0:  # PR_GET_DUMPABLE
            return "the harness is still dumpable"
    except (OSError, AttributeError, ImportError) as e:
        return f"cannot make the harness undumpable: {e}"
    return None


def _show(value: Any, limit: int) -> str:
    try:
        text = repr(value)
    except BaseException:
        text = "<unprintable>"
    return text if len(text) <= limit else text[:limit] + "..."


def _error(exc: BaseException) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    tests = [f.lineno for f in frames if f.filename == "test.py"]
    info = exc.__dict__.get("__criticlab__") if hasattr(exc, "__dict__") else None
    if info is None:
        info = {"error": traceback.format_exception_only(type(exc), exc)[-1].strip(),
                "type": type(exc).__name__, "line": None}
    return {**info, "test_line": tests[-1] if tests else None}


def _namespace(names: Any, keep: list[str], link: _Link) -> dict[str, Any]:
    """The tests' globals: the solution's names, as plain values or handles; its modules are
    the harness's own imports; none hides a builtin, unless it is the entry point."""
    if type(names) is not dict:
        raise ValueError("a malformed reply")
    space: dict[str, Any] = {"__name__": "solution", "__builtins__": builtins}
    for name, value in names.items():
        if not name.isidentifier() or name.startswith("__") or (
                hasattr(builtins, name) and name not in keep):
            continue
        if type(value) is dict and set(value) == {"module"}:
            module = value["module"]
            if type(module) is str and module.partition(".")[0] in sys.stdlib_module_names:
                with contextlib.suppress(BaseException):
                    space[name] = importlib.import_module(module)
            continue
        space[name] = _decode(value, link.handle)
    return space


def _run_tests(out: _Out, space: dict[str, Any], tests: list[Any], show: int) -> None:
    for i, (setup, left, right) in enumerate(tests):
        try:
            exec(compile(setup, "test.py", "exec"), space)
            if left is not None:
                got = eval(compile(left, "test.py", "eval"), space)
                want = eval(compile(right, "test.py", "eval"), space)
                if not got == want:  # noqa: SIM201 (what `assert got == want` asks)
                    note = {"note": f"a {object.__getattribute__(got, '_kind')} object of the "
                                    "solution's, which never equals a plain value"
                            } if type(got) is _Remote and type(want) is not _Remote else {}
                    out.say(test=i, ok=False, got=_show(got, show), expected=_show(want, show),
                            **note)
                    continue
        except _Gone as e:
            out.say(test=i, ok=False, gone=str(e))
            return
        except BaseException as e:
            out.say(test=i, ok=False, **_error(e))
        else:  # passed, unless the solution's process died on the way (and the test hid it)
            gone = _Link.current.gone if _Link.current is not None else "no link"
            if gone is not None:
                out.say(test=i, ok=False, gone=gone)
                return
            out.say(test=i, ok=True)
    out.say(done=True)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    here = os.getcwd()
    sys.path[:] = [p for p in sys.path if os.path.isabs(p) and not p.startswith(here)]
    code = _read_frame(0)
    problem = _undumpable()
    if problem is None:
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(requests_w)
                os.close(replies_r)
                _solution_process(code, requests_r, replies_w)
            finally:
                os._exit(0)
        os.close(requests_r)
        os.close(replies_w)
        _Link.current = _Link(pid, requests_w, replies_r)
    # only now, with the solution's process gone from stdin: the key and the tests
    config = json.loads(_read_frame(0))
    out = _Out(bytes.fromhex(config["key"]))
    link = _Link.current
    if problem is not None or link is None:
        out.say(refused=problem or "no harness")
        return
    try:
        first = _recv(link.replies)
        if type(first) is not dict:
            raise ValueError("a malformed reply")
    except BaseException as e:
        out.say(stage="code", gone=link.end(e))
        return
    if "stage" in first:
        try:
            out.say(stage="code", **_fields(first["stage"]))
        except ValueError:
            out.say(stage="code", gone="its process sent a malformed reply")
        link.end(None)
        return
    try:
        space = _namespace(first.get("names"), [str(k) for k in config.get("keep", [])], link)
    except BaseException as e:
        out.say(stage="code", gone=link.end(e))
        return
    out.say(ready=True)
    try:
        _run_tests(out, space, config["tests"], int(config["show"]))
    finally:
        link.end(None)


if __name__ == "__main__":
    main()
