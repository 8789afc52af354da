"""Real ``criticlab serve`` processes on 127.0.0.1 (no HTTP mocks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]
    store: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start(tmp: Path, *args: str, module: str = "criticlab.serve", token: str | None = None,
          wait: float = 60.0) -> Server:
    """``python -m MODULE --port P --store ... ARGS`` until /health answers."""
    import httpx2

    port = free_port()
    store = tmp / f"store-{port}.sqlite"
    log = tmp / f"server-{port}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CRITICLAB_TOKEN", None)
    if token is not None:
        env["CRITICLAB_TOKEN"] = token
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), "--store", str(store), *args],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx2.get(url + "/health", timeout=1).status_code == 200:
                return Server(url, proc, store, log)
        except httpx2.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture(scope="module")
def server_factory(tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []
    tmp = tmp_path_factory.mktemp("serve")

    def make(*args: str, **kw: object) -> Server:
        s = start(tmp, *args, **kw)  # type: ignore[arg-type]
        started.append(s)
        return s

    yield make
    for s in started:
        stop(s)


@pytest.fixture(scope="module")
def arith(server_factory: Callable[..., Server]) -> Server:
    """The arithmetic critic (no model), small limits."""
    return server_factory("--critic", "arithmetic", "--max-batch", "8", "--max-body", "20000")


@pytest.fixture(scope="module")
def slow(server_factory: Callable[..., Server]) -> Server:
    """The slow test critic: one item in flight at most, 3 s per request."""
    return server_factory("--critic", "slow", "--max-inflight", "1", "--request-timeout", "3",
                          module="tests.serve.slowserver")
