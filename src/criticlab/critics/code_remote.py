"""The harness's side of the link to the solution's process: handles on the solution's objects,
every use of which is a request (part of the program of :mod:`criticlab.critics.code_harness`).
A handle compares only with another handle: with a plain value it is never equal, and has no
order, so that what a test compares is the harness's own plain values.
"""

import builtins
import contextlib
import os
import signal
import time
from typing import Any

if __name__ != "__main__":  # in criticlab; in the sandbox the three files are one program
    from criticlab.critics.code_wire import _BINARY, _TEXT, _decode, _encode, _recv, _send


class _Gone(BaseException):
    """The solution's process died or broke the protocol; every later request fails too.
    Not an Exception, so that a test's ``except Exception`` does not swallow it."""


class _Link:
    """The harness's two pipes to the solution's process (``current``: the run's one)."""

    current: "_Link | None" = None

    def __init__(self, pid: int, requests: int, replies: int) -> None:
        self.pid, self.requests, self.replies = pid, requests, replies
        self.gone: str | None = None
        self.handles: dict[int, _Remote] = {}

    def ask(self, request: list[Any]) -> tuple[Any, list[Any]]:
        """Send one request; its value and the arguments sent back, or the solution's
        exception raised here. Anything else that goes wrong ends the link (``_Gone``)."""
        if self.gone is not None:
            raise _Gone(self.gone)
        try:
            _send(self.requests, request)
            reply = _recv(self.replies)
            if type(reply) is not dict or not reply.keys() <= {"ok", "back", "raised", "stop"}:
                raise ValueError("a malformed reply")
            raised: BaseException | None = None
            if "raised" in reply:
                raised = _raised(reply["raised"])
            elif "stop" in reply:
                raised = StopIteration()
            else:
                value = _decode(reply["ok"], self.handle)
                back = reply.get("back", [])
                back = [_decode(v, self.handle) for v in back] if type(back) is list else []
        except BaseException as e:
            self.gone = self.end(e)
            raise _Gone(self.gone) from None
        if raised is not None:
            raise raised
        return value, back

    def handle(self, body: Any) -> "_Remote":
        if not (type(body) is list and len(body) == 2 and type(body[0]) is int
                and type(body[1]) is str):
            raise ValueError("a malformed handle")
        remote = self.handles.get(body[0])
        if remote is None:
            remote = self.handles[body[0]] = _Remote(body[0], body[1][:_TEXT])
        return remote

    def end(self, why: BaseException | None) -> str:
        """Stop the solution's process; what became of it, in words."""
        for fd in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.requests = self.replies = -1
        try:
            for _ in range(100 if why is not None else 0):  # a process that died: its status
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    if os.WIFSIGNALED(status):
                        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
                    return f"exit status {os.WEXITSTATUS(status)}"
                time.sleep(0.01)
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            return "its process is gone"
        return f"its process broke off the tests ({type(why).__name__})"


class _SolutionError(Exception):
    """An exception raised by the solution's code that is not a builtin one."""


def _raised(info: Any) -> BaseException:
    """The solution's exception, on the harness's side: the builtin exception of that name
    when there is one (so that a test's ``except ValueError`` works), with its text and
    line kept in ``__criticlab__``."""
    info = _fields(info)
    kind = getattr(builtins, info["type"], None)
    message = info["error"].partition(": ")[2]
    exc: BaseException = _SolutionError(message)
    if isinstance(kind, type) and issubclass(kind, Exception) and kind is not StopIteration:
        with contextlib.suppress(BaseException):
            exc = kind(message)
    exc.__criticlab__ = info  # type: ignore[attr-defined]
    return exc


def _fields(info: Any) -> dict[str, Any]:
    """The fields of the solution's exception (and only those: it sent them)."""
    if not (type(info) is dict and type(info.get("error")) is str
            and type(info.get("type")) is str and type(info.get("line")) in (int, type(None))):
        raise ValueError("a malformed exception")
    return {"error": info["error"][:_TEXT], "type": info["type"][:_TEXT], "line": info["line"]}


def _ask(op: str, *args: Any) -> Any:
    link = _Link.current
    assert link is not None
    return link.ask([op, [_encode(a, _ref) for a in args]])[0]


def _ref(value: Any) -> Any:
    if type(value) is _Remote:
        return {"h": object.__getattribute__(value, "_id")}
    raise TypeError(f"a test passed a {type(value).__name__} to the solution's code: only "
                    "plain values and the solution's own objects can cross to its process")


def _typed(value: Any, *kinds: type) -> Any:
    if type(value) not in kinds:
        raise TypeError(f"the solution's object gave a {type(value).__name__}, not "
                        f"{' or '.join(k.__name__ for k in kinds)}")
    return value


class _Remote:
    """An object of the solution's, held by the harness: every use is a request."""

    __slots__ = ("_id", "_kind")

    def __init__(self, at: int, kind: str) -> None:
        object.__setattr__(self, "_id", at)
        object.__setattr__(self, "_kind", kind)

    def __getattr__(self, name: str) -> Any:
        return _ask("getattr", self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        _ask("setattr", self, name, value)

    def __delattr__(self, name: str) -> None:
        _ask("delattr", self, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        link = _Link.current
        assert link is not None
        mutable = [i for i, a in enumerate(args) if type(a) in (list, dict, set, bytearray)]
        value, back = link.ask(["call", _encode(self, _ref), _encode(list(args), _ref),
                                 {"d": [[k, _encode(v, _ref)] for k, v in kwargs.items()]},
                                 mutable])
        for i, new in zip(mutable, back, strict=False):  # what the call did to its arguments
            old = args[i]
            if type(new) is type(old) and new != old:
                if isinstance(old, list | bytearray):
                    old[:] = new
                else:
                    old.clear()
                    old.update(new)
        return value

    def __eq__(self, other: object) -> Any:
        return _ask("eq", self, other) if type(other) is _Remote else NotImplemented

    def __ne__(self, other: object) -> Any:
        return _ask("ne", self, other) if type(other) is _Remote else NotImplemented

    def __hash__(self) -> int:
        return int(_typed(_ask("hash", self), int))

    def __bool__(self) -> bool:
        return bool(_typed(_ask("truth", self), bool))

    def __len__(self) -> int:
        return int(_typed(_ask("len", self), int))

    def __iter__(self) -> Any:
        it = _ask("iter", self)
        return it if type(it) is _Remote else iter(it)

    def __next__(self) -> Any:
        return _ask("next", self)

    def __contains__(self, item: object) -> bool:
        # by iterating, so that the comparisons are the harness's own
        return any(x is item or x == item for x in self)

    def __repr__(self) -> str:
        return str(_typed(_ask("repr", self), str))

    def __str__(self) -> str:
        return str(_typed(_ask("str", self), str))

    def __format__(self, spec: str) -> str:
        return str(_typed(_ask("format", self, spec), str))

    def __instancecheck__(self, obj: object) -> bool:
        return bool(_typed(_ask("isinstance", obj, self), bool))

    def __subclasscheck__(self, cls: object) -> bool:
        return bool(_typed(_ask("issubclass", cls, self), bool))

    def __pow__(self, other: Any, mod: Any = None) -> Any:
        return _ask("pow", self, other) if mod is None else _ask("pow", self, other, mod)

    def __rpow__(self, other: Any) -> Any:
        return _ask("pow", other, self)

    def __reduce__(self) -> Any:
        raise TypeError("an object of the solution's cannot be copied or pickled")


def _forward(op: str, reflected: bool = False) -> Any:
    def method(self: _Remote, *args: Any) -> Any:
        return _ask(op, *args, self) if reflected else _ask(op, self, *args)
    return method


def _ordered(op: str) -> Any:
    def method(self: _Remote, other: object) -> Any:
        return _ask(op, self, other) if type(other) is _Remote else NotImplemented
    return method


for _name in _BINARY:
    setattr(_Remote, f"__{_name}__", _forward(_name))
    setattr(_Remote, f"__r{_name}__", _forward(_name, reflected=True))
    setattr(_Remote, f"__i{_name}__", _forward(f"i{_name}"))
for _name in ("lt", "le", "gt", "ge"):
    setattr(_Remote, f"__{_name}__", _ordered(_name))
for _name in ("neg", "pos", "abs", "invert", "int", "float", "index", "complex", "round",
              "floor", "ceil", "trunc", "reversed", "getitem", "setitem", "delitem"):
    setattr(_Remote, f"__{_name}__", _forward(_name))


