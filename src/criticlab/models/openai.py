"""Any OpenAI-compatible chat server: vLLM, SGLang, llama.cpp's server, Ollama, OpenAI.

Requests go through the official ``openai`` SDK with its own retries switched off; this
module retries itself (rate limits, server errors, timeouts, dropped connections) so that
the policy is testable and the final error is one clear line. Every failure surfaces as
:class:`~criticlab.errors.ModelError`, never as an SDK traceback.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import openai

from criticlab.errors import ConfigError, ModelError
from criticlab.models.base import (
    GenerateConfig,
    Generation,
    Message,
    TokenLogprob,
    messages_to_dicts,
)
from criticlab.types import Usage

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 429})


def _retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def _retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, else ``Retry-After`` as
    seconds or as an HTTP date. ``None`` when absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT by definition
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _server_message(err: openai.APIStatusError) -> str:
    """The server's own words from an error body (OpenAI's ``{"error": {"message"}}`` shape,
    or the looser shapes local servers use), else the raw body text."""
    body: Any = err.body
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            msg = inner.get("message") or inner.get("detail")
            if msg:
                return _one_line(msg)
        elif isinstance(inner, str) and inner:
            return _one_line(inner)
    try:
        text = err.response.text
    except Exception:  # a streamed or unreadable body: fall back to the SDK's summary
        text = ""
    return _one_line(text or err.message)


class _Failure(Exception):
    """One failed attempt, classified. ``kind`` heads the final error line."""

    def __init__(
        self, kind: str, detail: str, *, retryable: bool, wait: float | None = None
    ) -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail
        self.retryable = retryable
        self.wait = wait  # what the server asked for (Retry-After), if anything


class OpenAIModel:
    """A model served behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``name`` is ``"openai:<model>"``; ``model`` itself is what the server is sent.
    ``base_url`` defaults to ``$OPENAI_BASE_URL`` (else OpenAI's API); ``api_key`` to
    ``$OPENAI_API_KEY``, or ``"EMPTY"`` when a ``base_url`` is set, as local servers do not
    check it. ``timeout`` bounds each HTTP request as a whole (seconds); a failed request is
    retried up to ``max_retries`` times with backoff ``min(backoff_max, backoff_base * 2**k)``
    (less up to 25% jitter), or what the server's ``Retry-After``/``retry-after-ms`` asks,
    capped at ``backoff_max``. At most ``concurrency`` requests of this instance are in flight
    at once (backoff sleeps do not hold a slot).

    It does not cache: caching is the store's job. It does not stream.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        concurrency: int = 8,
    ) -> None:
        if not model:
            raise ConfigError("openai: a model name is required")
        self.name = f"openai:{model}"
        if timeout <= 0:
            raise ConfigError(f"{self.name}: timeout must be positive, got {timeout}")
        if max_retries < 0:
            raise ConfigError(f"{self.name}: max_retries must be >= 0, got {max_retries}")
        if backoff_base < 0 or backoff_max < 0:
            raise ConfigError(f"{self.name}: backoff_base and backoff_max must be >= 0")
        if concurrency < 1:
            raise ConfigError(f"{self.name}: concurrency must be >= 1, got {concurrency}")
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if self.base_url is None:
                raise ConfigError(
                    f"{self.name}: no API key: set OPENAI_API_KEY or pass api_key "
                    "(or pass base_url for a local server)"
                )
            key = "EMPTY"
        self.api_key = key
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.concurrency = concurrency
        self.schema_form = "json_schema"
        """How a JSON schema is sent: OpenAI's ``json_schema`` form (vLLM, SGLang, Ollama,
        OpenAI) until the server refuses it, then llama.cpp's ``json_object`` + ``schema``."""
        # The HTTP client's connection pool and the semaphore belong to one event loop; they
        # are made lazily inside the running loop and remade when a later asyncio.run uses
        # this model, since pooled connections of a closed loop cannot be reused.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._sem: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model!r}, base_url={self.base_url!r})"

    @property
    def where(self) -> str:
        """The server, as named in error messages."""
        return (self.base_url or "https://api.openai.com/v1").rstrip("/")

    def _state(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._client is None or self._sem is None:
            self._loop = loop
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self.api_key,
                timeout=self.timeout,
                max_retries=0,
            )
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._client, self._sem

    async def aclose(self) -> None:
        """Close the HTTP connections of the current event loop's client."""
        client, self._client, self._loop, self._sem = self._client, None, None, None
        if client is not None:
            await client.close()

    async def generate(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]:
        """``config.n`` samples of a chat completion.

        ``n`` is sent only when above 1. A server that returns fewer choices than asked
        (llama.cpp's ignores ``n``) is asked again for the rest, with ``seed`` advanced to
        ``seed + samples collected so far``, so sample ``i`` is drawn with ``seed + i`` when
        the server draws one per request. Usage: the first sample of each HTTP response
        carries the response's prompt tokens and ``calls=1``; its other samples carry
        ``calls=0`` and no prompt tokens; the response's completion tokens are split over
        its samples (by each sample's logprob token count when those add up exactly, else
        evenly, the remainder going to the earliest samples), so the sum over samples equals
        what the server reported (when a server sends more choices than asked, the extras
        are dropped and the kept ones carry the whole response's usage).
        """
        out: list[Generation] = []
        while len(out) < config.n:
            want = config.n - len(out)
            seed = None if config.seed is None else config.seed + len(out)
            body = self._request_body(messages, config, want, seed)
            response = await (self._create(body) if config.json_schema is None
                              else self._create_structured(body, config))
            try:
                gens = self._parse(response, config, want)
            except ModelError:
                raise
            except Exception as e:  # construct()-ed models of a wrong shape fail on access
                raise ModelError(
                    f"{self.name} at {self.where}: malformed response: "
                    f"{type(e).__name__}: {_one_line(str(e))}",
                    retryable=False,
                ) from None
            out.extend(gens)
        return out

    def _request_body(
        self, messages: Sequence[Message], config: GenerateConfig, n: int, seed: int | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages_to_dicts(messages),
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_tokens,
        }
        if n > 1:
            body["n"] = n
        if seed is not None:
            body["seed"] = seed
        if config.stop:
            body["stop"] = list(config.stop)
        if config.logprobs:
            body["logprobs"] = True
            if config.top_logprobs > 0:
                body["top_logprobs"] = config.top_logprobs
        if config.json_schema is not None:
            body["response_format"] = _response_format(self.schema_form, config.schema())
        return body

    async def _create_structured(self, body: dict[str, Any], config: GenerateConfig) -> Any:
        """:meth:`_create` for a schema-constrained request. A server that refuses the
        ``response_format`` form (HTTP 400/422) is asked once in the other form, which is
        then kept; refused again, it is one error line, not a retry storm."""
        for attempt in range(2):
            try:
                return await self._create(body)
            except ModelError as e:
                refused = not e.retryable and (any(f"HTTP {c}" in str(e) for c in (400, 422))
                                               or "response_format" in str(e))
                if not refused:
                    raise
                if attempt == 1:
                    raise ModelError(
                        f"{self.name} at {self.where} refuses schema-constrained output "
                        f"(--structured) in both response_format forms: {e}",
                        retryable=False) from None
            self.schema_form = "json_object" if self.schema_form == "json_schema" else (
                "json_schema")
            body = {**body, "response_format": _response_format(self.schema_form,
                                                                 config.schema())}
        raise AssertionError("unreachable")

    async def _create(self, body: dict[str, Any]) -> Any:
        """One chat completion, retried. Returns the SDK's parsed response."""
        client, sem = self._state()
        attempt = 0
        while True:
            attempt += 1
            try:
                async with sem, asyncio.timeout(self.timeout):
                    return await client.chat.completions.create(**body)
            except BaseException as e:
                failure = self._classify(e)
                if failure is None:
                    raise
            if not failure.retryable or attempt > self.max_retries:
                plural = "" if attempt == 1 else "s"
                raise ModelError(
                    f"{self.name} at {self.where}: {failure.kind} after {attempt} "
                    f"attempt{plural}: {failure.detail}",
                    retryable=failure.retryable,
                )
            delay = self._delay(attempt - 1, failure.wait)
            logger.info(
                "%s at %s: %s (attempt %d of %d), retrying in %.2fs",
                self.name,
                self.where,
                failure.kind,
                attempt,
                self.max_retries + 1,
                delay,
            )
            await asyncio.sleep(delay)

    def _delay(self, retry: int, asked: float | None) -> float:
        if asked is not None:
            return min(self.backoff_max, asked)
        delay = min(self.backoff_max, self.backoff_base * 2.0**retry)
        return delay * (1.0 - 0.25 * random.random())

    def _classify(self, e: BaseException) -> _Failure | None:
        """What went wrong in one attempt; ``None`` for what must propagate (cancellation,
        KeyboardInterrupt)."""
        if isinstance(e, openai.APITimeoutError | TimeoutError):
            return _Failure("timeout", f"no response within {self.timeout:g}s", retryable=True)
        if isinstance(e, openai.APIConnectionError):
            cause = e.__cause__ or e.__context__
            detail = f"{type(cause).__name__}: {cause}" if cause is not None else e.message
            return _Failure("connection error", _one_line(detail), retryable=True)
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            # llama-cpp-python's server answers a response_format it cannot read with a 500:
            # a refusal of the request, not a server fault worth retrying
            retryable = _retryable_status(status) and "response_format" not in str(e)
            wait = _retry_after(e.response.headers) if retryable else None
            return _Failure(f"HTTP {status}", _server_message(e), retryable=retryable, wait=wait)
        if isinstance(e, Exception):
            # Invalid JSON, a response the SDK cannot read, an SDK bug: not worth retrying.
            return _Failure(
                "malformed response", _one_line(f"{type(e).__name__}: {e}"), retryable=False
            )
        return None

    def _parse(self, response: Any, config: GenerateConfig, want: int) -> list[Generation]:
        if isinstance(response, str | bytes):
            # the SDK hands back the text when the server's content type is not JSON
            raise ModelError(
                f"{self.name} at {self.where}: malformed response: not JSON: "
                f"{_one_line(str(response), 120)!r}",
                retryable=False,
            )
        # a server that sends more choices than asked: keep the first `want`, which then
        # carry the whole response's usage
        choices = list(response.choices or ())[:want]
        if not choices:
            raise ModelError(
                f"{self.name} at {self.where}: malformed response: no choices", retryable=False
            )
        texts: list[str] = []
        logprobs: list[tuple[TokenLogprob, ...] | None] = []
        finish: list[str | None] = []
        for choice in choices:
            content = choice.message.content
            texts.append("" if content is None else str(content))
            logprobs.append(_logprobs(choice) if config.logprobs else None)
            reason = choice.finish_reason
            finish.append(None if reason is None else str(reason))
        usage = response.usage
        prompt = int(usage.prompt_tokens or 0) if usage is not None else 0
        completion = int(usage.completion_tokens or 0) if usage is not None else 0
        split = _split_completion(completion, logprobs)
        return [
            Generation(
                text=texts[i],
                logprobs=logprobs[i],
                usage=Usage(
                    prompt_tokens=prompt if i == 0 else 0,
                    completion_tokens=split[i],
                    calls=1 if i == 0 else 0,
                ),
                finish_reason=finish[i],
            )
            for i in range(len(choices))
        ]


def _response_format(form: str, schema: Any) -> dict[str, Any]:
    if form == "json_schema":  # OpenAI's structured outputs (vLLM, SGLang, Ollama)
        return {"type": "json_schema",
                "json_schema": {"name": "critique", "schema": schema, "strict": True}}
    return {"type": "json_object", "schema": schema}  # llama.cpp's server


def _logprobs(choice: Any) -> tuple[TokenLogprob, ...] | None:
    lp = choice.logprobs
    if lp is None or lp.content is None:
        return None
    return tuple(
        TokenLogprob(
            token=str(t.token),
            logprob=float(t.logprob),
            top=tuple((str(x.token), float(x.logprob)) for x in (t.top_logprobs or ())),
        )
        for t in lp.content
    )


def _split_completion(total: int, logprobs: Sequence[tuple[TokenLogprob, ...] | None]) -> list[int]:
    """Completion tokens per choice, summing to ``total``: exact from logprob token counts
    when every choice has them and they add up, else an even split with the remainder on the
    earliest choices."""
    k = len(logprobs)
    counts = [len(lp) for lp in logprobs if lp is not None]
    if len(counts) == k and sum(counts) == total:
        return counts
    base, extra = divmod(total, k)
    return [base + (1 if i < extra else 0) for i in range(k)]
