"""Clients of ``criticlab serve``: :class:`Client` (blocking) and :class:`AsyncClient`, with
the same methods. A 429 is retried after its ``Retry-After`` (a few times); every other
failure is a :class:`~criticlab.errors.ModelError` of one line (``retryable`` for 429, 502,
503, 504 and a server that cannot be reached)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2 as httpx

from criticlab.errors import ConfigError, ModelError

_RETRYABLE = {429, 502, 503, 504}


def check_token(token: str | None, where: str = "the token") -> None:
    """A token travels in an HTTP header (``Authorization: Bearer TOKEN``), which holds
    visible ASCII only: a token with another character (non-ASCII, a space, a control
    character) could never be sent or matched, so it is refused here, on both sides."""
    if token is not None and not token:
        raise ConfigError(f"{where}: is empty")
    if token is not None and not all("!" <= c <= "~" for c in token):
        raise ConfigError(f"{where}: must be visible ASCII characters with no spaces (it is "
                          "sent in an HTTP header); choose another token")


class _Base:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 600.0,
                 retries: int = 4) -> None:
        check_token(token or None)
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self.retries = retries

    def _reward_body(self, records: Sequence[Mapping[str, Any]], reward: str | None,
                     critiques: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"records": list(records), "critiques": critiques}
        if reward is not None:
            body["reward"] = reward
        return body

    def _wait(self, r: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying ``r``, or ``None`` to stop here."""
        if r.status_code != 429 or attempt >= self.retries:
            return None
        try:
            return min(60.0, max(0.05, float(r.headers.get("retry-after", "1"))))
        except ValueError:
            return 1.0

    def _read(self, r: httpx.Response, path: str) -> Any:
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code >= 400:
            msg = body.get("error") if isinstance(body, dict) else None
            raise ModelError(f"{self.base_url}{path}: HTTP {r.status_code}: "
                             f"{msg or r.reason_phrase}",
                             retryable=r.status_code in _RETRYABLE)
        if body is None:
            raise ModelError(f"{self.base_url}{path}: the reply is not JSON")
        return body

    def _unreachable(self, path: str, e: Exception) -> ModelError:
        return ModelError(f"{self.base_url}{path}: {type(e).__name__}: {e}".splitlines()[0],
                          retryable=True)


class Client(_Base):
    """``Client("http://127.0.0.1:8000", token=None).critique(records)``; use it as a
    context manager, or call :meth:`close`."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 600.0,
                 retries: int = 4) -> None:
        super().__init__(base_url, token, timeout=timeout, retries=retries)
        self._http = httpx.Client(base_url=self.base_url, headers=self.headers,
                                  timeout=timeout)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        attempt = 0
        while True:
            try:
                r = self._http.request(method, path, json=body)
            except httpx.HTTPError as e:
                raise self._unreachable(path, e) from None
            wait = self._wait(r, attempt)
            if wait is None:
                return self._read(r, path)
            attempt += 1
            time.sleep(wait)

    def critique(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One ``Result.to_dict()`` per record, in order."""
        return list(self._call("POST", "/v1/critique", {"records": list(records)})["results"])

    def reward(self, records: Sequence[Mapping[str, Any]], reward: str | None = None,
               critiques: bool = False) -> dict[str, Any]:
        """``{"reward", "rewards": [float...]}`` (+ ``"critiques"``); ``reward=None``: the
        server's default."""
        return dict(self._call("POST", "/v1/reward",
                               self._reward_body(records, reward, critiques)))

    def info(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/info"))

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "/health"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base):
    """:class:`Client`'s methods as coroutines; ``async with AsyncClient(url) as c``."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 600.0,
                 retries: int = 4) -> None:
        super().__init__(base_url, token, timeout=timeout, retries=retries)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self.headers,
                                       timeout=timeout)

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        attempt = 0
        while True:
            try:
                r = await self._http.request(method, path, json=body)
            except httpx.HTTPError as e:
                raise self._unreachable(path, e) from None
            wait = self._wait(r, attempt)
            if wait is None:
                return self._read(r, path)
            attempt += 1
            await asyncio.sleep(wait)

    async def critique(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        body = await self._call("POST", "/v1/critique", {"records": list(records)})
        return list(body["results"])

    async def reward(self, records: Sequence[Mapping[str, Any]], reward: str | None = None,
                     critiques: bool = False) -> dict[str, Any]:
        return dict(await self._call("POST", "/v1/reward",
                                     self._reward_body(records, reward, critiques)))

    async def info(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/v1/info"))

    async def health(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/health"))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
