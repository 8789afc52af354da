"""``criticlab serve``'s HTTP app: critiques and critique rewards of one critic.

Endpoints (JSON in and out; every error is ``{"error": "one line"}``, never a traceback):

- ``GET /health`` → ``{"status": "ok"}`` (no token needed).
- ``GET /v1/info`` → critic, model, version, rewards, limits and ``stats``;
  ``GET /v1/stats`` → the counters alone.
- ``POST /v1/critique`` ``{"records": [...]}`` → ``{"results": [Result.to_dict(), ...]}``, the
  lines of ``criticlab critique --json``.
- ``POST /v1/reward`` ``{"records": [...], "reward": NAME, "critiques": false}`` →
  ``{"reward": NAME, "rewards": [float, ...]}`` (+ ``"critiques": [Result dicts]``).
- ``POST /get_reward``: OpenRLHF's remote reward model (:mod:`criticlab.serve.openrlhf`).

Limits: a token (``Authorization: Bearer``) on every endpoint but ``/health`` when one is
set (401); the body size (413), records per request (413), characters and steps per record
(413 naming the record), items in flight over all requests (429 with ``Retry-After``),
seconds per request, reading the body included (504). Bad JSON or a bad field is a 400 naming
the field; an image that is not an http(s) or ``data:image/`` URL is one (the server reads no
path a client names). A client that disconnects cancels its request's work (499, no error).

No request holds the event loop: the body is parsed, split into steps and answered in JSON in
worker threads, the verifiers run off the loop, and every pattern applied to request text is
linear. Connections are limited by :mod:`criticlab.serve.server`.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from criticlab.critics.base import Critic
from criticlab.engines import Engines, EngineSpec
from criticlab.errors import ConfigError
from criticlab.serve import openrlhf
from criticlab.serve.client import check_token
from criticlab.serve.service import (
    POLICY_REWARDS,
    REWARDS,
    Limits,
    RequestError,
    Service,
    check_reward,
    reward_of,
    to_examples,
)
from criticlab.store import Store, json_text
from criticlab.types import Result

log = logging.getLogger("criticlab.serve")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    if not token and not is_loopback(host):
        raise ConfigError(f"--host {host} is reachable from other machines: set a token "
                          "(--token or CRITICLAB_TOKEN) or bind 127.0.0.1")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status_code=status, headers=headers,
                    media_type="application/json")


def _encode(value: Any) -> str:
    """``value`` as JSON text, the same as :func:`json_text`, but each item of a top-level
    list encoded apart: the C encoder holds the GIL for the whole of one call, which for
    megabytes of results is long enough to stall the event loop in another thread."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json_text(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    return json_text(value)


def build_app(critic_spec: str | Critic, model_spec: str = "embedded", *,
              base_url: str | None = None, threads: int | None = None,
              timeout: float = 120.0, concurrency: int = 4, max_tokens: int = 1024,
              structured: bool = False, samples: int = 1, template: str | None = None,
              store_path: str | Path | None = None, token: str | None = None,
              limits: Limits | None = None, reward: str = "verdict") -> FastAPI:
    """The app serving ``critic_spec`` (a critic name, or a critic object) with
    ``model_spec``. One :class:`Engines` over one store (``store_path``; none: no cache)
    for the app's life, closed at shutdown. ``reward`` is what ``/get_reward`` returns."""
    from criticlab import __version__
    from criticlab.registry import uses_model

    check_token(token, "--token (or CRITICLAB_TOKEN)")
    limits = limits or Limits()
    limits.check()
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if reward not in POLICY_REWARDS:  # OpenRLHF's labels are answers, not step labels
        raise ConfigError(f"unknown reward {reward!r}; choose from {', '.join(POLICY_REWARDS)}")
    store = Store(store_path) if store_path is not None else None
    engines = Engines(EngineSpec(model=model_spec, base_url=base_url, threads=threads,
                                 timeout=timeout, concurrency=concurrency,
                                 max_tokens=max_tokens, structured=structured), store)
    try:
        if isinstance(critic_spec, str):
            critic = engines.critic(critic_spec, samples=samples, template=template)
            spec, needs_model = critic_spec, uses_model(critic_spec)
        else:
            critic, spec, needs_model = critic_spec, critic_spec.name, True
    except BaseException:
        if store is not None:
            store.close()
        raise
    model = model_spec if needs_model else None
    identity = {"critic": spec, "model": model, "max_tokens": max_tokens,
                "structured": structured, "samples": samples, "template": template}
    service = Service(critic, engines, identity=identity, concurrency=concurrency,
                      max_inflight=limits.max_inflight)
    requests: Counter[str] = Counter()
    statuses: Counter[str] = Counter()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engines.aclose()
            if store is not None:
                store.close()

    app = FastAPI(title="criticlab", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    def stats() -> dict[str, Any]:
        return {"requests": dict(requests), "responses": dict(statuses), **service.stats()}

    async def handle(request: Request, name: str,
                     work: Callable[[Any], Awaitable[Any]] | None = None) -> Response:
        requests[name] += 1
        try:
            _authorize(request, token)
            if work is None:
                response = _json(await _info() if name == "info" else stats())
            else:
                body = await _read_json(request, limits)
                result = await _guarded(request, work(body), limits.request_timeout)
                response = await asyncio.to_thread(_json, result)  # megabytes of JSON: off the loop
        except RequestError as e:
            response = _json({"error": e.message}, e.status, e.headers)
        except (_Disconnected, ClientDisconnect):  # the client left: nobody to answer
            requests["cancelled"] += 1
            response = Response(status_code=499)
        except Exception:  # never a traceback to the client; the server log has it
            log.exception("%s failed", request.url.path)
            response = _json({"error": "internal error (see the server's log)"}, 500)
        statuses[str(response.status_code)] += 1
        return response

    async def _info() -> dict[str, Any]:
        return {"critic": critic.name, "critic_spec": spec, "model": model,
                "criticlab": __version__, "rewards": list(REWARDS), "default_reward": reward,
                "limits": {**asdict(limits), "concurrency": concurrency,
                           "max_tokens": max_tokens},
                "auth": token is not None, "store": str(store_path) if store_path else None,
                "stats": stats()}

    async def critique_work(body: Any) -> dict[str, Any]:
        examples = await asyncio.to_thread(to_examples, _field(body, "records", ("records",)),
                                           limits=limits)
        with service.admit(len(examples)):
            results = await service.critique_all(examples)
        return {"results": await _dicts(results)}

    async def reward_work(body: Any) -> dict[str, Any]:
        records = _field(body, "records", ("records", "reward", "critiques"))
        examples = await asyncio.to_thread(to_examples, records, limits=limits)
        name = check_reward(body.get("reward", reward), examples)
        with_critiques = body.get("critiques", False)
        if not isinstance(with_critiques, bool):
            raise RequestError(400, "critiques: must be true or false")
        with service.admit(len(examples)):
            rewards, results = await service.rewards(examples, name)
        out: dict[str, Any] = {"reward": name, "rewards": rewards}
        if with_critiques:
            out["critiques"] = await _dicts(results)
        return out

    async def openrlhf_work(body: Any) -> dict[str, Any]:
        examples, n = await asyncio.to_thread(openrlhf.parse, body, limits=limits)
        todo = [ex for ex in examples if ex is not None]
        with service.admit(len(todo)):
            _, results = await service.rewards(todo, "verdict", field="query")
        it = iter(results)
        done = [None if ex is None else next(it) for ex in examples]
        rewards = [0.0 if r is None else reward_of(reward, r) for r in done]
        parsed = [0.0 if r is None or r.critique is None or not r.critique.parsed else 1.0
                  for r in done]
        steps = [0.0 if ex is None or ex.solution is None else float(len(ex.solution.steps))
                 for ex in examples]
        assert len(rewards) == n
        return {"rewards": rewards, "scores": rewards,
                "extra_logs": {"critique_parsed": parsed, "response_steps": steps}}

    @app.get("/health")
    async def health() -> Response:
        statuses["200"] += 1
        return _json({"status": "ok"})

    @app.get("/v1/info")
    async def info(request: Request) -> Response:
        return await handle(request, "info")

    @app.get("/v1/stats")
    async def stats_endpoint(request: Request) -> Response:
        return await handle(request, "stats")

    @app.post("/v1/critique")
    async def critique(request: Request) -> Response:
        return await handle(request, "critique", critique_work)

    @app.post("/v1/reward")
    async def reward_endpoint(request: Request) -> Response:
        return await handle(request, "reward", reward_work)

    @app.post("/get_reward")
    async def get_reward(request: Request) -> Response:
        return await handle(request, "get_reward", openrlhf_work)

    return app


class _Disconnected(Exception):
    pass


def _authorize(request: Request, token: str | None) -> None:
    if token is None:
        return
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                             token.encode()):
        raise RequestError(401, "missing or wrong token: send 'Authorization: Bearer TOKEN'",
                           {"WWW-Authenticate": "Bearer"})


def _field(body: Any, name: str, known: tuple[str, ...]) -> Any:
    if not isinstance(body, dict):
        raise RequestError(400, f"body: must be a JSON object with {name!r}")
    unknown = [k for k in body if k not in known]
    if unknown:
        raise RequestError(400, f"{unknown[0]}: unknown field (known: {', '.join(known)})")
    if name not in body:
        raise RequestError(400, f"{name}: missing")
    return body[name]


async def _read_json(request: Request, limits: Limits) -> Any:
    """The body as JSON: at most ``limits.max_body`` bytes (413), read within the request
    timeout (504), parsed off the event loop (megabytes of JSON take a while)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limits.max_body:
        raise RequestError(413, f"body: {int(length)} bytes, over the limit of {limits.max_body}")

    async def read() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body:
                raise RequestError(413, f"body: over the limit of {limits.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        data = await asyncio.wait_for(read(), limits.request_timeout)
    except TimeoutError:
        raise RequestError(504, f"the body took over {limits.request_timeout:g} s to arrive"
                           ) from None
    try:
        return await asyncio.to_thread(json.loads, data)
    except (ValueError, RecursionError) as e:
        raise RequestError(400, f"body: not valid JSON ({_short(e)})") from None


async def _dicts(results: list[Result]) -> list[dict[str, Any]]:
    """``Result.to_dict()`` of each, off the event loop (a batch may echo megabytes)."""
    return await asyncio.to_thread(lambda: [r.to_dict() for r in results])


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


async def _guarded(request: Request, work: Awaitable[Any], timeout: float) -> Any:
    """``work``, cancelled when the client disconnects (:class:`_Disconnected`) or after
    ``timeout`` seconds (504)."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise RequestError(504, f"the request took over {timeout:g} s; it was stopped "
                                        "(its finished critiques are stored)")
            done, _ = await asyncio.wait({task}, timeout=min(0.2, left))
            if done:
                return task.result()
            if await request.is_disconnected():
                raise _Disconnected
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
