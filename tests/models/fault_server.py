"""A real OpenAI-chat-compatible HTTP server on 127.0.0.1 whose replies are scripted per
request, for testing clients against rate limits, errors, stalls and dropped connections.

    with FaultServer() as srv:
        srv.script(error(429, headers={"Retry-After": "1"}), ok())
        ... OpenAIModel("m", base_url=srv.base_url) ...
        assert len(srv.requests) == 2

Each request takes the next scripted :class:`Reply`; when the script is empty the
``default`` reply is used. Every request is recorded (JSON body and headers) before it is
answered, and the server tracks the most requests it ever had in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """What to do with one request.

    ``drop``: read the request, then close the socket without a response.
    ``delay``: seconds to wait before answering (cut short when the server stops).
    ``status`` other than 200: an OpenAI-style error body carrying ``message``.
    ``raw``: send these bytes as the body verbatim (with ``content_type``).
    Otherwise a chat.completion with ``choices`` choices (texts from ``texts``, cycled),
    ``logprobs`` per-choice token logprobs when given, and the stated usage.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "scripted error"
    delay: float = 0.0
    drop: bool = False
    raw: bytes | None = None
    content_type: str = "application/json"
    choices: int = 1
    texts: tuple[str, ...] = ("ok",)
    finish_reason: str = "stop"
    logprobs: tuple[tuple[tuple[str, float, tuple[tuple[str, float], ...]], ...], ...] | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5


def ok(**kw: Any) -> Reply:
    return Reply(**kw)


def error(status: int, message: str = "scripted error", **kw: Any) -> Reply:
    return Reply(status=status, message=message, **kw)


def stall(seconds: float) -> Reply:
    return Reply(delay=seconds)


def drop() -> Reply:
    return Reply(drop=True)


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FaultServer:
    """Start with ``with FaultServer() as srv`` (or ``start()``/``stop()``)."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.requests: list[Request] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return self._script.popleft() if self._script else self.default

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like real servers

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                try:
                    body = json.loads(data or b"{}")
                except ValueError:
                    body = {"_unparsed": data.decode("utf-8", "replace")}
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                reply = server._next(request)
                try:
                    self._answer(request, reply)
                except OSError:  # the client gave up (timeout) and closed its end
                    self.close_connection = True
                finally:
                    server._done()

            def _answer(self, request: Request, reply: Reply) -> None:
                if reply.delay:
                    server._stopping.wait(reply.delay)
                if reply.drop or server._stopping.is_set():
                    self.close_connection = True
                    return
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if reply.raw is not None:
                    return self._send(reply.status, reply.raw, reply.content_type, reply.headers)
                if reply.status != 200:
                    payload = {"error": {"message": reply.message, "type": "scripted"}}
                    return self._send(reply.status, payload, headers=reply.headers)
                return self._send(200, completion(request.body, reply), headers=reply.headers)

            def _send(
                self,
                status: int,
                payload: Any,
                content_type: str = "application/json",
                headers: dict[str, str] | None = None,
            ) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

        return Handler


def completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A chat.completion JSON answering ``body`` as ``reply`` says."""
    choices = []
    for i in range(reply.choices):
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": reply.texts[i % len(reply.texts)]},
            "finish_reason": reply.finish_reason,
            "logprobs": None,
        }
        if reply.logprobs is not None:
            choice["logprobs"] = {
                "content": [
                    {
                        "token": tok,
                        "logprob": lp,
                        "bytes": list(tok.encode()),
                        "top_logprobs": [
                            {"token": t, "logprob": p, "bytes": list(t.encode())} for t, p in top
                        ],
                    }
                    for tok, lp, top in reply.logprobs[i % len(reply.logprobs)]
                ]
            }
        choices.append(choice)
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": choices,
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }
