"""The clients and the TRL reward function against a real server, and in process; the
embedded model through the server."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from criticlab.errors import ConfigError, ModelError
from criticlab.serve import AsyncClient, Client, reward_function
from tests.serve.conftest import Server
from tests.serve.test_server import APPLES, PENS, stats, wait_inflight

# a GRPO batch as TRL passes it: prompts, completions and the dataset's columns
PROMPTS = ["What is 6 * 7?", [{"role": "user", "content": "What is 6 * 7?"}], "What is 6 * 7?"]
COMPLETIONS = ["6 * 7 = 42\nThe answer is 42.",
               [{"role": "assistant", "content": "6 * 7 = 48\nThe answer is 48."}],
               "   "]  # blank: 0 without a critique


def test_sync_client(arith: Server) -> None:
    with Client(arith.url) as c:
        assert c.health() == {"status": "ok"}
        assert c.info()["critic"] == "arithmetic"
        results = c.critique([PENS, APPLES])
        assert [r["critique"]["first_error"] for r in results] == [0, None]
        body = c.reward([PENS, APPLES], reward="first_error", critiques=True)
        assert body["rewards"] == [0.0, 1.0] and len(body["critiques"]) == 2
        assert c.reward([APPLES])["reward"] == "verdict"  # the server's default
        with pytest.raises(ModelError, match=r"HTTP 400: records\[0\].steps: must be a list"):
            c.critique([{"problem": "x", "steps": "y"}])


def test_async_client(arith: Server) -> None:
    async def go() -> tuple[list[dict], dict, dict]:
        async with AsyncClient(arith.url) as c:
            return (await c.critique([PENS]), await c.reward([APPLES, PENS]),
                    await c.health())

    results, body, health = asyncio.run(go())
    assert results[0]["critique"]["verdict"] == "incorrect"
    assert body["rewards"] == [1.0, 0.0] and health == {"status": "ok"}


def test_client_errors_are_one_line(arith: Server, server_factory) -> None:  # type: ignore[no-untyped-def]
    with Client("http://127.0.0.1:9", timeout=2) as c, pytest.raises(ModelError) as e:
        c.health()
    assert e.value.retryable and "\n" not in str(e.value)
    s = server_factory("--critic", "arithmetic", token="tok")
    with Client(s.url) as c, pytest.raises(ModelError, match="HTTP 401"):
        c.info()
    with Client(s.url, token="tok") as c:
        assert c.info()["auth"] is True


def _critique_in_thread(server: Server, problem: str, done: list) -> threading.Thread:
    def run() -> None:
        with Client(server.url) as c:
            done.append(c.critique([{**APPLES, "problem": problem}]))

    t = threading.Thread(target=run)
    t.start()
    wait_inflight(server)
    return t


def test_client_retries_429(slow: Server) -> None:
    done: list[list[dict]] = []
    t = _critique_in_thread(slow, "sleep 1: apples", done)
    refused = stats(slow)["refused_busy"]
    with Client(slow.url, retries=10) as c:
        results = c.critique([PENS])  # refused while the other runs, then served
    t.join()
    assert results[0]["critique"]["first_error"] == 0 and done
    assert stats(slow)["refused_busy"] > refused
    with Client(slow.url, retries=0) as c:
        t = _critique_in_thread(slow, "sleep 1: more apples", done)
        with pytest.raises(ModelError, match="HTTP 429: busy") as e:
            c.critique([PENS])
        t.join()
    assert e.value.retryable


def test_trl_reward_function_server_and_in_process(arith: Server, tmp_path: Path) -> None:
    remote = reward_function(arith.url, reward="verdict")
    local = reward_function(critic="arithmetic", reward="verdict", store=tmp_path / "s.sqlite")
    try:
        assert remote.__name__ == "criticlab_verdict"
        want = [1.0, 0.0, 0.0]
        assert remote(COMPLETIONS, prompts=PROMPTS) == want
        assert local(COMPLETIONS, prompts=PROMPTS) == want
        gold = reward_function(arith.url, reward="gold:verdict")
        # the critic said "correct" then "incorrect": right about both golds
        assert gold(COMPLETIONS, prompts=PROMPTS, gold_first_error=[-1, 0, 0]) == [1.0, 1.0, 0.0]
        with pytest.raises(ConfigError, match="gold_first_error"):
            gold(COMPLETIONS, prompts=PROMPTS)
        with pytest.raises(ConfigError, match="either url"):
            reward_function()
    finally:
        remote.close()
        local.close()


@pytest.mark.slow
def test_embedded_model_round_trip(server_factory, embedded_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = server_factory("--critic", "stepwise", "--model", "embedded", "--max-tokens", "64",
                       wait=180.0)
    with Client(s.url, timeout=300) as c:
        assert c.info()["model"] == "embedded"
        first = c.critique([PENS])
        crit = first[0]["critique"]
        assert first[0]["error"] is None and crit["critic"] and crit["raw"]
        calls = stats(s)["engine_calls"]
        assert calls >= 1
        again = c.critique([PENS])
    assert again == first
    after = stats(s)
    assert after["engine_calls"] == calls and after["items_from_store"] == 1
