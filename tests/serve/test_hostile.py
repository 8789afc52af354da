"""A hostile client against ``criticlab serve`` as a real process on 127.0.0.1: it cannot make
the server read a file, hold the event loop, exhaust its connections, or turn a disconnect
into an error; a token that could never match is refused at start."""

from __future__ import annotations

import base64
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest

from criticlab.errors import ConfigError
from tests.deadline import seconds
from tests.models.fault_server import FaultServer, ok
from tests.serve.conftest import ROOT, Server, start, stop

PENS = {"id": "pens", "problem": "Ann buys 5 pens at 3 dollars each. What does she pay?",
        "steps": ["5 * 3 = 18 dollars.", "She pays 18 dollars."]}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def post(server: Server, path: str, body: object, **kw: object) -> httpx2.Response:
    return httpx2.post(server.url + path, json=body, timeout=30, **kw)  # type: ignore[arg-type]


def stats(server: Server) -> dict:
    return httpx2.get(server.url + "/v1/stats", timeout=5).json()


def store_results(server: Server) -> int:
    with sqlite3.connect(server.store) as db:
        return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])


@pytest.fixture(scope="module")
def limited(server_factory) -> Server:  # type: ignore[no-untyped-def]
    """The arithmetic critic with small per-record limits and connection guards."""
    return server_factory("--critic", "arithmetic", "--max-record", "5000",
                          "--max-record-steps", "10", "--max-connections", "40",
                          "--header-timeout", "1")


# --- a client cannot make the server read its files ---------------------------------------

def test_an_image_path_is_400_and_never_read(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # an LM critic whose model server records every request: before, the server read each
    # path and sent the file, base64-encoded, to the model server (a FIFO made it wait on the
    # event loop for ever; /dev/zero filled its memory)
    with FaultServer() as model_server:
        model_server.script(*[ok(texts=("Step 1: correct. Step 2: correct.",))] * 4)
        s = server_factory("--critic", "stepwise", "--model", "openai:vlm", "--base-url",
                           model_server.base_url, "--max-tokens", "16")
        secret = tmp_path / "secret.png"
        secret.write_bytes(PNG)
        secret.chmod(0o600)
        fifo = tmp_path / "fifo.png"
        os.mkfifo(fifo)
        for j, path in enumerate([str(secret), str(fifo), "/dev/zero", str(tmp_path),
                                  "../" * 8 + str(secret), str(tmp_path / "missing.png")]):
            images = ["data:image/png;base64,AAAA"] * j + [path]
            r = post(s, "/v1/critique", {"records": [{**PENS, "images": images}]})
            assert r.status_code == 400, (path, r.text)
            assert r.json() == {"error": f"records[0].images[{j}]: must be an http(s) URL or "
                                         "a data:image/ URL (the server reads no paths)"}
        assert model_server.requests == [] and stats(s)["items_critiqued"] == 0
        assert store_results(s) == 0 and "Traceback" not in s.output()
        # a data URL is sent on as it is (and nothing else)
        url = "data:image/png;base64," + base64.b64encode(PNG).decode()
        r = post(s, "/v1/critique", {"records": [{**PENS, "images": [url]}]})
        assert r.status_code == 200
        (req,) = model_server.requests
        parts = req.body["messages"][-1]["content"]
        assert [p["image_url"]["url"] for p in parts if p["type"] == "image_url"] == [url]


def test_image_urls_are_accepted(limited: Server) -> None:
    rec = {**PENS, "images": ["data:image/png;base64,iVBORw0KGgo=", "https://example.org/a.png"]}
    r = post(limited, "/v1/critique", {"records": [rec]})
    assert r.status_code == 200
    assert r.json()["results"][0]["example"]["problem"]["images"] == rec["images"]


# --- no request holds the event loop -------------------------------------------------------

def test_get_reward_trailing_whitespace_is_linear() -> None:
    # the old trailing-token pattern took 16 s on 100,000 spaces (quadratic)
    setup = "from criticlab.serve.openrlhf import split_response"
    for response in ('" " * 1_000_000', '"</s>" * 250_000', '" <|im_end|>" * 80_000',
                     '"x" + " " * 1_000_000 + "y"', '"\\n<pad>" * 200_000 + "a"'):
        seconds(setup, f"split_response('Q:' + {response}, 'Q:')")
    from criticlab.serve.openrlhf import split_response
    assert split_response("<s>Q: 2+2? A: 4 <|im_end|>\n<|endoftext|>  ", "Q: 2+2?") == "A: 4"
    assert split_response("Q A <|x|> b </s><pad>", "Q") == "A <|x|> b"
    assert split_response("Q" + " " * 1000 + "</s>", "Q") == ""


@pytest.mark.parametrize("text", [
    '" " * 1_000_000', '"*" * 1_000_000', '"Step 1:" * 125_000', '"<|a|>" * 200_000',
    '"\\n \\n" * 330_000 + "x"', '"</s> " * 200_000 + "a"', '"\\r" * 1_000_000'])
def test_what_the_server_does_to_request_text_is_linear_at_1_mb(text: str) -> None:
    # records and OpenRLHF queries of 1 MB (limits raised), parsed and split into steps
    setup = ("from criticlab.serve.service import Limits, to_examples\n"
             "from criticlab.serve.openrlhf import parse\n"
             "big = Limits(max_record=10**7, max_record_steps=10**7)")
    seconds(setup, f"to_examples([{{'problem': 'q', 'solution': 'a ' + {text}}}], limits=big)")
    seconds(setup, f"parse({{'query': ['Q' + {text}], 'prompts': ['Q']}}, limits=big)")


def test_get_reward_with_100k_spaces_answers_at_once(limited: Server) -> None:
    body = {"query": ["Q: 1+1?" + " " * 100_000], "prompts": ["Q: 1+1?"]}
    r = post(limited, "/get_reward", {**body, "query": ["Q: 1+1?" + " " * 4000]})
    assert r.status_code == 200 and r.json()["rewards"] == [0.0]  # empty response: 0
    r = post(limited, "/get_reward", body)  # over --max-record: refused before any work
    assert (r.status_code, r.json()) == (413, {"error": "query[0]: 100007 characters, over the "
                                                        "limit of 5000 per record (--max-record)"})


def test_records_over_the_limits_are_413_naming_the_record(limited: Server) -> None:
    long = {**PENS, "id": "long", "problem": "x" * 6000}
    r = post(limited, "/v1/critique", {"records": [PENS, long]})
    assert r.status_code == 413
    assert r.json()["error"].startswith("records[1]: ") and "limit of 5000 per record" in r.text
    many = {**PENS, "solution": "\n".join(f"{i} + 1 = {i + 1}" for i in range(11))}
    del many["steps"]
    r = post(limited, "/v1/reward", {"records": [many]})
    assert (r.status_code, r.json()) == (413, {"error": "records[0]: 11 steps, over the limit of "
                                                        "10 per record (--max-record-steps)"})
    q = "Q: sum?\n" + "\n".join(f"{i} + 1 = {i + 1}" for i in range(11))
    r = post(limited, "/get_reward", {"query": [q], "prompts": ["Q: sum?"]})
    assert r.status_code == 413 and r.json()["error"].startswith("query[0]: 11 steps")
    ok = {**PENS, "solution": "\n".join(f"{i} + 1 = {i + 1}" for i in range(10))}
    del ok["steps"]
    assert post(limited, "/v1/critique", {"records": [ok]}).status_code == 200


def test_health_answers_while_large_bodies_are_worked_on(server_factory) -> None:  # type: ignore[no-untyped-def]
    # three 8 MB bodies at once: one free-text solution of 8 MB (over --max-record; before,
    # it was split and verified on the event loop: /health waited 5-16 s) and two of 40
    # records under every limit; parsing, splitting, verifying and answering run off the
    # event loop, so /health still answers
    s = server_factory("--critic", "arithmetic", "--max-batch", "64")
    step = "12 * 13 = 156 and 156 + 4 = 160. " * 6 + "\n"  # 960 steps of 199 characters
    many = {"records": [{"id": str(i), "problem": f"p{i}",
                         "solution": step * (190_000 // len(step))} for i in range(40)]}
    one = {"records": [{"problem": "p", "solution": "1 + 1 = 2\n" * 700_000}]}
    codes: list[int] = []

    def big(body: dict) -> None:
        codes.append(httpx2.post(s.url + "/v1/critique", json=body, timeout=600).status_code)

    threads = [threading.Thread(target=big, args=(body,)) for body in (one, many, many)]
    for t in threads:
        t.start()
    worst = 0.0
    while any(t.is_alive() for t in threads):
        t0 = time.perf_counter()
        assert httpx2.get(s.url + "/health", timeout=30).status_code == 200
        worst = max(worst, time.perf_counter() - t0)
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 200, 413]
    # a hang is seconds; `benchmarks/serve_load.py --attack` measures the real p99
    assert worst < 2.0, f"/health took {worst:.2f} s during the large requests"


# --- connections ---------------------------------------------------------------------------

def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_a_disconnect_mid_body_is_a_clean_cancel(limited: Server) -> None:
    before = stats(limited)
    with socket.create_connection(("127.0.0.1", _port(limited))) as sock:
        sock.sendall(b"POST /v1/critique HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100000\r\n\r\n" + b'{"records": [' + b" " * 1000)
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while stats(limited)["requests"].get("cancelled", 0) == before["requests"].get("cancelled", 0):
        assert time.monotonic() < deadline, "the server never noticed the disconnect"
        time.sleep(0.05)
    after = stats(limited)
    assert after["responses"].get("500", 0) == before["responses"].get("500", 0)
    log = limited.output()
    assert "Traceback" not in log and "ERROR" not in log


def test_idle_and_half_sent_connections_are_closed(limited: Server) -> None:
    # 60 connections (the limit is 40): some send nothing, some half a request line
    socks = []
    for i in range(60):
        sock = socket.create_connection(("127.0.0.1", _port(limited)))
        if i % 2:
            sock.sendall(b"GET /heal")
        socks.append(sock)
    t0 = time.monotonic()
    r = httpx2.get(limited.url + "/health", timeout=10)  # a new client is still answered
    assert r.status_code == 200 and time.monotonic() - t0 < 5
    for sock in socks:  # each is closed by the server: at the limit, or after 1 s unanswered
        sock.settimeout(30)
        try:
            got = sock.recv(100)
        except ConnectionResetError:  # closed with data unread: as closed as can be
            got = b""
        assert got == b"", "an idle connection was kept open"
        sock.close()
    assert "Traceback" not in limited.output()


def _health_on(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = b""
    while b'{"status":"ok"}' not in reply:
        chunk = sock.recv(1000)
        assert chunk, f"closed after {reply!r}"
        reply += chunk
    return reply


def test_a_kept_alive_connection_is_answered_again(limited: Server) -> None:
    # idle after a response, under the header timeout: still open for the next request
    with socket.create_connection(("127.0.0.1", _port(limited))) as sock:
        sock.settimeout(5)
        assert _health_on(sock).startswith(b"HTTP/1.1 200 OK")
        time.sleep(0.5)
        assert _health_on(sock).startswith(b"HTTP/1.1 200 OK")


# --- tokens --------------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["tökén", " s3cret ", "two words", "tab\tin"])
def test_a_token_that_could_never_match_is_refused_at_start(token: str, tmp_path: Path) -> None:
    env = {**os.environ, "CRITICLAB_TOKEN": token, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "criticlab.serve", "--critic", "arithmetic",
                          "--store", str(tmp_path / "s.sqlite"), "--port", "0"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --token (or CRITICLAB_TOKEN): ")


def test_the_client_refuses_such_a_token() -> None:
    from criticlab.serve import Client

    with pytest.raises(ConfigError, match="visible ASCII"):
        Client("http://127.0.0.1:9", token="tökén")
    Client("http://127.0.0.1:9", token="").close()  # no token


def test_a_wrong_utf8_token_is_a_401(tmp_path: Path) -> None:
    s = start(tmp_path, "--critic", "arithmetic", token="s3cret")
    try:
        with socket.create_connection(("127.0.0.1", _port(s))) as sock:
            sock.sendall("GET /v1/info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tökén"
                         "\r\nConnection: close\r\n\r\n".encode())
            sock.settimeout(5)
            assert sock.recv(1000).startswith(b"HTTP/1.1 401 ")
        r = httpx2.get(s.url + "/v1/info", headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200
    finally:
        stop(s)
