"""OpenAIModel against a real local HTTP server that misbehaves on cue (see fault_server.py).

Backoffs are tiny here (backoff_base=0.01) so the retry paths run fast; the one deliberate
wait is the Retry-After check, which asserts the client waited at least what it was told.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from criticlab.errors import ConfigError, ModelError
from criticlab.models.base import GenerateConfig, LanguageModel, Message, TokenLogprob
from criticlab.models.openai import OpenAIModel, _retry_after
from criticlab.types import Usage
from tests.models.fault_server import FaultServer, drop, error, ok, stall

MSGS = [Message("user", "Is 2 + 2 = 4?")]
Make = Callable[..., OpenAIModel]
GUARD = 15.0  # asyncio.wait_for guard: a hang fails the test instead of the suite


@pytest.fixture
def srv() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@pytest.fixture
async def model(srv: FaultServer) -> AsyncIterator[Make]:
    """``model(**kw)``: an OpenAIModel on ``srv`` with test-sized backoffs, closed after."""
    made: list[OpenAIModel] = []

    def make(**kw: Any) -> OpenAIModel:
        kw.setdefault("base_url", srv.base_url)
        kw.setdefault("timeout", 5.0)
        kw.setdefault("max_retries", 3)
        kw.setdefault("backoff_base", 0.01)
        kw.setdefault("backoff_max", 0.05)
        made.append(OpenAIModel("test-model", **kw))
        return made[-1]

    yield make
    for m in made:
        await m.aclose()


async def gen(m: OpenAIModel, config: GenerateConfig | None = None) -> list[Any]:
    return await asyncio.wait_for(m.generate(MSGS, config or GenerateConfig()), GUARD)


async def fails(m: OpenAIModel, config: GenerateConfig | None = None) -> ModelError:
    with pytest.raises(ModelError) as info:
        await gen(m, config)
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is None  # no SDK traceback chained underneath
    return info.value


async def test_name_protocol_and_text(srv: FaultServer, model: Make) -> None:
    srv.script(ok(texts=("All steps are correct.",), finish_reason="length"))
    m = model()
    assert m.name == "openai:test-model"
    assert isinstance(m, LanguageModel)
    [g] = await gen(m)
    assert g.text == "All steps are correct."
    assert g.finish_reason == "length"
    assert g.logprobs is None
    assert g.usage == Usage(prompt_tokens=10, completion_tokens=5, calls=1)
    assert srv.requests[0].path == "/v1/chat/completions"
    assert srv.requests[0].body["model"] == "test-model"
    assert srv.requests[0].body["messages"] == [{"role": "user", "content": "Is 2 + 2 = 4?"}]


async def test_request_body_mapping(srv: FaultServer, model: Make) -> None:
    config = GenerateConfig(
        temperature=0.7, top_p=0.9, seed=42, max_tokens=77, stop=("\n\n", "END")
    )
    await gen(model(), config)
    body = srv.requests[0].body
    assert body["temperature"] == 0.7
    assert body["top_p"] == 0.9
    assert body["seed"] == 42
    assert body["max_tokens"] == 77
    assert body["stop"] == ["\n\n", "END"]
    assert "n" not in body and "logprobs" not in body and "top_logprobs" not in body

    await gen(model(), GenerateConfig(seed=None))
    body = srv.requests[1].body
    assert "seed" not in body and "stop" not in body


async def test_429_then_ok_waits_retry_after(srv: FaultServer, model: Make) -> None:
    srv.script(error(429, "slow down", headers={"Retry-After": "1"}), ok())
    m = model(backoff_max=5.0)
    start = time.monotonic()
    [g] = await gen(m)
    assert time.monotonic() - start >= 0.99  # the server's 1 s, not the 0.01 s backoff
    assert g.text == "ok"
    assert len(srv.requests) == 2


async def test_retry_after_ms(srv: FaultServer, model: Make) -> None:
    srv.script(error(429, headers={"retry-after-ms": "300", "Retry-After": "9"}), ok())
    start = time.monotonic()
    await gen(model(backoff_max=5.0))
    assert time.monotonic() - start >= 0.29
    assert len(srv.requests) == 2


async def test_retry_after_capped_at_backoff_max(srv: FaultServer, model: Make) -> None:
    srv.script(error(503, headers={"Retry-After": "3600"}), ok())
    [g] = await gen(model(backoff_max=0.05))  # the guard fails this if it waits an hour
    assert g.text == "ok"


def test_retry_after_parsing() -> None:
    now = 1_700_000_000.0
    assert _retry_after({}) is None
    assert _retry_after({"retry-after": "2"}) == 2.0
    assert _retry_after({"retry-after": "1.5"}) == 1.5
    assert _retry_after({"retry-after-ms": "250", "retry-after": "7"}) == 0.25
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert _retry_after({"retry-after": date}, now=now) == pytest.approx(30.0)
    past = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now - 30))
    assert _retry_after({"retry-after": past}, now=now) == 0.0
    assert _retry_after({"retry-after": "soon"}) is None


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
async def test_retryable_status_then_ok(srv: FaultServer, status: int, model: Make) -> None:
    srv.script(error(status), ok())
    [g] = await gen(model())
    assert g.text == "ok"
    assert len(srv.requests) == 2


async def test_500_500_then_ok(srv: FaultServer, model: Make) -> None:
    srv.script(error(500), error(500), ok())
    [g] = await gen(model())
    assert g.text == "ok"
    assert g.usage.calls == 1  # failed attempts are not counted as engine calls
    assert len(srv.requests) == 3


async def test_always_500_gives_up(srv: FaultServer, model: Make) -> None:
    srv.default = error(500, "the GPU caught fire")
    err = await fails(model(max_retries=3))
    assert err.retryable is True
    assert str(err) == (
        f"openai:test-model at {srv.base_url}: HTTP 500 after 4 attempts: the GPU caught fire"
    )
    assert len(srv.requests) == 4


async def test_no_retries(srv: FaultServer, model: Make) -> None:
    srv.default = error(503)
    err = await fails(model(max_retries=0))
    assert "HTTP 503 after 1 attempt:" in str(err)
    assert len(srv.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_client_error_fails_at_once(srv: FaultServer, status: int, model: Make) -> None:
    srv.script(error(status, "bad request body"), ok())
    err = await fails(model())
    assert err.retryable is False
    assert f"HTTP {status} after 1 attempt: bad request body" in str(err)
    assert len(srv.requests) == 1


async def test_timeout_then_ok(srv: FaultServer, model: Make) -> None:
    srv.script(stall(3.0), ok())
    [g] = await gen(model(timeout=0.3))
    assert g.text == "ok"
    assert len(srv.requests) >= 2  # a loaded machine can time out the answered one too


async def test_always_stalls_gives_up_without_hanging(srv: FaultServer, model: Make) -> None:
    srv.default = stall(5.0)
    err = await fails(model(timeout=0.2, max_retries=1))
    assert err.retryable is True
    assert "timeout after 2 attempts" in str(err)
    # the client made 2 attempts (the message says so); on a loaded machine the second can
    # time out before the server's handler thread has even read it
    assert 1 <= len(srv.requests) <= 2


async def test_dropped_connection_then_ok(srv: FaultServer, model: Make) -> None:
    srv.script(drop(), ok())
    [g] = await gen(model())
    assert g.text == "ok"
    assert len(srv.requests) == 2


async def test_always_dropped_gives_up(srv: FaultServer, model: Make) -> None:
    srv.default = drop()
    err = await fails(model(max_retries=2))
    assert err.retryable is True
    assert "connection error after 3 attempts" in str(err)
    assert len(srv.requests) == 3


async def test_nothing_listening(model: Make) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = await fails(model(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1))
    assert err.retryable is True
    assert f"127.0.0.1:{port}/v1: connection error after 2 attempts" in str(err)


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"<html>proxy error</html>", "text/html"),
        (b'{"unexpected": "shape"}', "application/json"),
        (b'{"choices": []}', "application/json"),
        (b'{"choices": [{"index": 0, "message": 5}]}', "application/json"),
    ],
)
async def test_malformed_response(
    srv: FaultServer, model: Make, raw: bytes, content_type: str
) -> None:
    srv.script(ok(raw=raw, content_type=content_type), ok())
    err = await fails(model())
    assert err.retryable is False
    assert "malformed response" in str(err)
    assert len(srv.requests) == 1


async def test_n_from_a_server_that_ignores_n(srv: FaultServer, model: Make) -> None:
    srv.default = ok(choices=1, texts=("sample",))
    gens = await gen(model(), GenerateConfig(n=3, temperature=1.0, seed=5))
    assert [g.text for g in gens] == ["sample"] * 3
    assert [(r.body.get("n"), r.body["seed"]) for r in srv.requests] == [(3, 5), (2, 6), (None, 7)]
    # each sample came from its own HTTP response, so each carries that response's usage
    assert [g.usage for g in gens] == [Usage(10, 5, calls=1)] * 3


async def test_n_choices_in_one_response_split_usage(srv: FaultServer, model: Make) -> None:
    srv.default = ok(choices=3, texts=("a", "b", "c"), prompt_tokens=10, completion_tokens=7)
    gens = await gen(model(), GenerateConfig(n=3, temperature=1.0))
    assert [g.text for g in gens] == ["a", "b", "c"]
    assert len(srv.requests) == 1 and srv.requests[0].body["n"] == 3
    assert [g.usage for g in gens] == [Usage(10, 3, calls=1), Usage(0, 2), Usage(0, 2)]
    assert sum((g.usage for g in gens), Usage()) == Usage(10, 7, calls=1)


async def test_n_server_returns_too_many(srv: FaultServer, model: Make) -> None:
    srv.default = ok(choices=4, texts=("a", "b", "c", "d"))
    gens = await gen(model(), GenerateConfig(n=2, temperature=1.0))
    assert [g.text for g in gens] == ["a", "b"]
    assert sum((g.usage for g in gens), Usage()) == Usage(10, 5, calls=1)


LOGPROBS = (
    (("Yes", -0.1, (("Yes", -0.1), ("No", -2.5))), (".", -0.01, ((".", -0.01), ("!", -5.0)))),
    (("No", -1.2, (("No", -1.2), ("Yes", -0.4))),),
)


async def test_logprobs(srv: FaultServer, model: Make) -> None:
    srv.default = ok(choices=2, texts=("Yes.", "No"), logprobs=LOGPROBS, completion_tokens=3)
    config = GenerateConfig(n=2, temperature=1.0, logprobs=True, top_logprobs=2)
    a, b = await gen(model(), config)
    body = srv.requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert a.logprobs == (
        TokenLogprob("Yes", -0.1, (("Yes", -0.1), ("No", -2.5))),
        TokenLogprob(".", -0.01, ((".", -0.01), ("!", -5.0))),
    )
    assert b.logprobs == (TokenLogprob("No", -1.2, (("No", -1.2), ("Yes", -0.4))),)
    # logprob token counts add up to the server's completion tokens: they give the split
    assert (a.usage.completion_tokens, b.usage.completion_tokens) == (2, 1)


async def test_logprobs_requested_but_absent(srv: FaultServer, model: Make) -> None:
    [g] = await gen(model(), GenerateConfig(logprobs=True))
    assert g.logprobs is None
    assert "top_logprobs" not in srv.requests[0].body


async def test_concurrency_limit(srv: FaultServer, model: Make) -> None:
    srv.default = ok(delay=0.2)
    m = model(concurrency=2)
    results = await asyncio.wait_for(
        asyncio.gather(*(m.generate(MSGS, GenerateConfig()) for _ in range(6))), GUARD
    )
    assert len(results) == 6 and len(srv.requests) == 6
    assert srv.max_in_flight == 2


def test_usable_from_several_event_loops(srv: FaultServer) -> None:
    m = OpenAIModel("test-model", base_url=srv.base_url, concurrency=1)

    async def once(close: bool) -> str:
        [g] = await m.generate(MSGS, GenerateConfig())
        if close:
            await m.aclose()
        return g.text

    # the first loop's client is left open on purpose: the second loop must not reuse it
    assert [asyncio.run(once(close)) for close in (False, True)] == ["ok", "ok"]
    assert len(srv.requests) == 2


async def test_api_key(srv: FaultServer, monkeypatch: pytest.MonkeyPatch, model: Make) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    await gen(model())
    assert srv.requests[0].headers["authorization"] == "Bearer EMPTY"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    await gen(model())
    assert srv.requests[1].headers["authorization"] == "Bearer sk-from-env"
    await gen(model(api_key="sk-given"))
    assert srv.requests[2].headers["authorization"] == "Bearer sk-given"


async def test_base_url_from_env(
    srv: FaultServer, model: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    [g] = await gen(model(base_url=None))
    assert g.text == "ok" and len(srv.requests) == 1


def test_missing_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIModel("gpt-4o-mini")
    with pytest.raises(ConfigError, match="concurrency"):
        OpenAIModel("m", base_url="http://127.0.0.1:1/v1", concurrency=0)


SCHEMA = GenerateConfig(json_schema='{"type":"object","properties":{"first_error":'
                                    '{"enum":[-1,0,1]}},"required":["first_error"]}')


async def test_a_schema_goes_as_response_format_and_a_refusal_is_one_line(
        srv: FaultServer, model: Make) -> None:
    """--structured: OpenAI's json_schema form first; a server that refuses it (400) is asked
    once in llama.cpp's json_object + schema form, which is kept for later requests; refused
    in both forms it is one error line after two requests, never a retry storm."""
    m = model()
    srv.script(error(400, "response_format: unsupported type"), ok(texts=('{"first_error": 1}',)))
    (g,) = await gen(m, SCHEMA)
    assert g.text == '{"first_error": 1}' and m.schema_form == "json_object"
    forms = [r.body["response_format"] for r in srv.requests]
    assert forms[0]["type"] == "json_schema" and forms[0]["json_schema"]["strict"] is True
    assert forms[0]["json_schema"]["schema"] == forms[1]["schema"] == SCHEMA.schema()
    assert forms[1]["type"] == "json_object"
    await gen(m, SCHEMA)  # the form that worked is kept: one request
    assert len(srv.requests) == 3 and srv.requests[2].body["response_format"]["type"] == (
        "json_object")
    # refused in both forms (llama-cpp-python answers a body it cannot read with a 500 naming
    # response_format): one line, after exactly two more requests
    srv.script(error(500, "response_format: Input should be 'text' or 'json_object'"),
               error(422, "response_format: bad schema"))
    e = await fails(m, SCHEMA)
    assert "refuses schema-constrained output (--structured)" in str(e)
    assert len(srv.requests) == 5
    # free-text requests carry no response_format
    await gen(m)
    assert "response_format" not in srv.requests[5].body
