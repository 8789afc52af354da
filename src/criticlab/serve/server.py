"""Running ``criticlab serve``'s app under uvicorn, guarded against clients that hold
connections open, and stopped gracefully.

uvicorn closes a keep-alive connection that stays idle after a response, but not one that
never sends a request, nor one that sends half a request line and stops (slowloris); and it
accepts connections until the process runs out of file descriptors, after which every accept
fails (asyncio logs a traceback each time) and normal requests wait. Here each connection is
guarded (:func:`guarded_protocol`):

- a connection waiting for a request (just opened, or idle after a response) whose request
  headers have not arrived within ``header_timeout`` seconds is closed;
- at most ``max_connections`` are open: a new one past the limit closes the connection that
  has waited longest for a request (a client that has sent its request is never dropped for
  it), and is itself closed only when every open connection has a request in flight.

The limit is kept below the process's file-descriptor limit (raised to its hard limit at
start), so accepting never fails for lack of descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("criticlab.serve")

HEADER_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 2048
SWITCH_INTERVAL_S = 0.0005
FD_RESERVE = 256
"""Descriptors kept for everything but client connections (the store, model clients, logs)."""


def connection_limit(wanted: int) -> int:
    """``wanted``, or fewer when the file-descriptor limit (raised to its hard limit where
    that is allowed) cannot hold that many connections and :data:`FD_RESERVE` more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + FD_RESERVE)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return max(1, min(wanted, soft - FD_RESERVE))


def guarded_protocol(base: type[Any], *, max_connections: int,
                     header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol ``base`` (h11 or httptools) with the guards of this module."""

    # connections in the order they began waiting for a request (oldest first); one that has
    # a request in flight again is skipped and dropped when met, and re-added when answered
    idle: OrderedDict[Any, None] = OrderedDict()

    class Guarded(base):
        _waiting_since = 0.0  # when it began waiting for a request (connected, or answered)
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._began_waiting()
            self._arm()
            if len(self.connections) > max_connections:
                self._evict()

        def connection_lost(self, exc: Exception | None) -> None:
            idle.pop(self, None)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._began_waiting()

        def _began_waiting(self) -> None:
            self._waiting_since = self.loop.time()
            idle[self] = None
            idle.move_to_end(self)

        def _evict(self) -> None:
            """Close the connection that has waited longest for a request (this new one
            when every other has a request in flight)."""
            while idle:
                oldest = next(iter(idle))
                del idle[oldest]
                if oldest is not self and oldest._waiting() and \
                        not oldest.transport.is_closing():
                    oldest._close_idle("connection limit reached")
                    idle[self] = None  # it was taken out on the way
                    return
            self._close_idle("connection limit reached, every connection busy")

        def _waiting(self) -> bool:
            """No request in flight: waiting for one (uvicorn's cycle is the last request)."""
            return self.cycle is None or bool(self.cycle.response_complete)

        def _arm(self, delay: float = header_timeout) -> None:
            self._timer = self.loop.call_later(delay, self._check)

        def _check(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            if not self._waiting():  # a request in flight: its own timeout governs
                self._arm()
                return
            left = self._waiting_since + header_timeout - self.loop.time()
            if left <= 0:
                self._close_idle("no request within the header timeout")
            else:
                self._arm(left)

        def _close_idle(self, why: str) -> None:
            """Close this connection, which is waiting for a request (never one with a
            request in flight)."""
            if self.transport.is_closing():
                return
            log.debug("closing a connection from %s: %s", self.client, why)
            try:
                self.timeout_keep_alive_handler()  # uvicorn's own close of an idle connection
            except Exception:  # a protocol state that refuses a clean close
                self.transport.close()

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded


def run(app: Any, host: str, port: int, *, max_connections: int = MAX_CONNECTIONS,
        header_timeout: float = HEADER_TIMEOUT_S) -> list[int]:
    """Serve ``app`` until SIGTERM or SIGINT, stopping gracefully (requests in flight
    finish); the signals it got. uvicorn itself re-raises the signal after its shutdown,
    which would end the process by that signal instead of exit code 0."""
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    # a request's work runs in worker threads; the event loop waits for the GIL at each of
    # its many handoffs (every socket call), by default up to 5 ms each: hand it over sooner
    sys.setswitchinterval(SWITCH_INTERVAL_S)

    protocol = guarded_protocol(AutoHTTPProtocol, max_connections=connection_limit(
        max_connections), header_timeout=header_timeout)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", timeout_keep_alive=5,
                            http=protocol, ws="none", lifespan="on")
    got: list[int] = []

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return

            def on_signal(sig: int, frame: Any) -> None:
                got.append(sig)
                self.handle_exit(sig, frame)

            old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

    Server(config).run()
    return got
