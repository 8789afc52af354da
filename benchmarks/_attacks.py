"""The attacks of ``serve_load.py --attack``: each a bounded loop against a server on
127.0.0.1 (never another host), run in processes of their own (so that an attacker's work does
not slow the probes) while the probes measure how a normal client fares: ``/health`` from a
new connection every 20 ms, and one small critique request after another over a kept-alive
connection."""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx2

STEP = "12 * 13 = 156 and 156 + 4 = 160. " * 6 + "\n"  # 199 characters


def _loop(stop: Any, once: Callable[[], None]) -> None:
    while not stop.is_set():
        try:
            once()
        except (httpx2.HTTPError, OSError):
            time.sleep(0.01)


def spaces_get_reward(url: str, stop: Any) -> None:
    """OpenRLHF's /get_reward with a response of 100,000 spaces (16 s each, before)."""
    body = {"query": ["Q: 1+1?" + " " * 100_000], "prompts": ["Q: 1+1?"]}
    with httpx2.Client(timeout=120) as http:
        _loop(stop, lambda: http.post(url + "/get_reward", json=body))


def huge_free_text(url: str, stop: Any) -> None:
    """An 8 MB free-text solution in one record (refused by --max-record) alternating with
    40 records of 190,000 characters each (7.6 MB of arithmetic, under every limit)."""
    one = {"records": [{"problem": "p", "solution": STEP * (8_000_000 // len(STEP))}]}
    many = {"records": [{"id": str(i), "problem": f"p{i}",
                         "solution": STEP * (190_000 // len(STEP))} for i in range(40)]}
    turn = [0]
    with httpx2.Client(timeout=600) as http:
        def once() -> None:
            turn[0] += 1
            http.post(url + "/v1/critique", json=one if turn[0] % 2 else many)
        _loop(stop, once)


def idle_connections(url: str, stop: Any, n: int = 3000, per_second: int = 500) -> None:
    """``n`` connections that send nothing or half a request line (more than
    --max-connections), each one the server closes reopened, ``per_second`` at most."""
    host, port = url.removeprefix("http://").split(":")
    socks: list[socket.socket] = []
    while not stop.is_set():
        socks = [s for s in socks if _open(s)]
        for _ in range(min(per_second, n - len(socks))):
            try:
                s = socket.create_connection((host, int(port)), timeout=5)
            except OSError:
                break
            if len(socks) % 2:
                s.sendall(b"POST /v1/critique HTTP/1.1\r\nHo")
            s.setblocking(False)
            socks.append(s)
        stop.wait(1.0)
    for s in socks:
        s.close()


def _open(s: socket.socket) -> bool:
    try:
        if s.recv(1) == b"":
            s.close()
            return False
    except BlockingIOError:
        return True
    except OSError:
        s.close()
        return False
    return True


def disconnect_mid_body(url: str, stop: Any) -> None:
    """A request whose body stops half way, then the connection closes."""
    host, port = url.removeprefix("http://").split(":")

    def once() -> None:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"POST /v1/critique HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 1000000\r\n\r\n" + b'{"records": [' + b" " * 50_000)
            time.sleep(0.02)
    _loop(stop, once)


def image_paths(url: str, stop: Any) -> None:
    """Records whose images name files of the server: /dev/zero, /etc/passwd, ../ paths."""
    paths = ["/dev/zero", "/etc/passwd", "../../../../etc/shadow", "/proc/self/environ"]
    rec = {"problem": "p", "steps": ["1 + 1 = 2"]}
    with httpx2.Client(timeout=60) as http:
        i = [0]

        def once() -> None:
            i[0] += 1
            http.post(url + "/v1/critique",
                      json={"records": [{**rec, "images": [paths[i[0] % len(paths)]]}]})
        _loop(stop, once)


ATTACKS: dict[str, Callable[[str, Any], None]] = {
    "get_reward_100k_spaces": spaces_get_reward, "huge_free_text": huge_free_text,
    "idle_connections": idle_connections, "disconnect_mid_body": disconnect_mid_body,
    "image_paths": image_paths,
}


def _health(host: str, port: int) -> bool:
    """GET /health on a new connection; whether it answered 200 within 30 s."""
    try:
        with socket.create_connection((host, port), timeout=30) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
        return reply.startswith(b"HTTP/1.1 200 ")
    except OSError:
        return False


def _pct(xs: list[float], p: float) -> float | None:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))] * 1000, 1) if xs else None


def measure(url: str, attacks: list[str], seconds: float) -> dict[str, Any]:
    """Run ``attacks`` together for ``seconds`` while probing: /health p50/p99/max (a new
    connection each), normal critique p50/p99, and the probes that failed."""
    mp = multiprocessing.get_context("spawn")
    stop = mp.Event()
    workers = [mp.Process(target=ATTACKS[a], args=(url, stop), daemon=True)
               for a in attacks for _ in range(2 if a != "idle_connections" else 1)]
    for w in workers:
        w.start()
    time.sleep(1.0 if attacks else 0.0)  # let the attack build up
    health: list[float] = []
    normal: list[float] = []
    failed = {"health": 0, "normal": 0}
    end = time.monotonic() + seconds
    host, port = url.removeprefix("http://").split(":")

    def probe_health() -> None:  # a raw socket: the figure is the server's, not a client's
        while time.monotonic() < end:
            t0 = time.perf_counter()
            if _health(host, int(port)):
                health.append(time.perf_counter() - t0)
            else:
                failed["health"] += 1
            time.sleep(0.02)

    def probe_normal() -> None:
        i = 0
        with httpx2.Client(timeout=60) as http:
            while time.monotonic() < end:
                i += 1
                rec = {"problem": f"n{i}: what is {i} * 7?", "steps": [f"{i} * 7 = {i * 7}"]}
                t0 = time.perf_counter()
                try:
                    ok = http.post(url + "/v1/critique", json={"records": [rec]}).status_code == 200
                except httpx2.HTTPError:
                    ok = False
                if ok:
                    normal.append(time.perf_counter() - t0)
                else:
                    failed["normal"] += 1
                time.sleep(0.02)

    probes = [threading.Thread(target=probe_health), threading.Thread(target=probe_normal)]
    for t in probes:
        t.start()
    for t in probes:
        t.join()
    stop.set()
    for w in workers:
        w.join(timeout=60)
        if w.is_alive():
            w.kill()
    return {"attack": "+".join(attacks) or "none", "health_n": len(health),
            "health_p50_ms": _pct(health, 0.5), "health_p99_ms": _pct(health, 0.99),
            "health_max_ms": round(max(health) * 1000, 1) if health else None,
            "normal_n": len(normal), "normal_p50_ms": _pct(normal, 0.5),
            "normal_p99_ms": _pct(normal, 0.99), "failed_probes": failed}
