"""A critic as a TRL reward function: ``GRPOTrainer(reward_funcs=[reward_function(...)])``.

The function has the shape of :mod:`criticlab.train.rewards`' functions
(``f(completions, **kwargs) -> list[float]``, ``prompts`` and every dataset column among the
keyword arguments). Each completion (text, or a conversation: its last message) is a solution
to its prompt (the question), split into steps and critiqued, either by a server
(``reward_function(url)``, through :class:`~criticlab.serve.client.Client`) or by a critic in
this process (``reward_function(critic="arithmetic")``, the server's own code without HTTP).
A blank completion gets 0 without a critique. The ``gold:*`` rewards read the gold first
error from the ``gold_first_error`` (or ``label``) column and a ``reference_answer`` column
when there is one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from criticlab.critics.base import Critic
from criticlab.errors import ConfigError, InputError
from criticlab.serve.service import (
    GOLD_REWARDS,
    REWARDS,
    RequestError,
    Service,
    to_examples,
)
from criticlab.train.rewards import text_of


class RewardFunction:
    """What :func:`reward_function` returns; ``__name__`` is what TRL logs it as."""

    def __init__(self, reward: str, url: str | None, token: str | None, timeout: float,
                 service: Service | None) -> None:
        self.reward = reward
        self.__name__ = f"criticlab_{reward.replace(':', '_')}"
        self._service = service
        self._client = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if url is not None:
            from criticlab.serve.client import Client

            self._client = Client(url, token, timeout=timeout)

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        records = _records(completions, kwargs, gold=self.reward in GOLD_REWARDS)
        todo = [r for r in records if r is not None]
        got: list[float] = []
        if todo and self._client is not None:
            got = [float(x) for x in self._client.reward(todo, self.reward)["rewards"]]
        elif todo:
            got = self._in_process(todo)
        it = iter(got)
        return [0.0 if r is None else next(it) for r in records]

    def _in_process(self, records: list[dict[str, Any]]) -> list[float]:
        assert self._service is not None
        service = self._service
        if self._loop is None:  # one loop for the critic's life, whatever thread calls
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, daemon=True,
                             name="criticlab-reward").start()
        try:
            examples = to_examples(records, limits=None)
        except RequestError as e:
            raise InputError(e.message) from None

        async def run() -> list[float]:
            rewards, _ = await service.rewards(examples, self.reward)
            return rewards

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._loop is not None:
            if self._service is not None:
                asyncio.run_coroutine_threadsafe(self._service.engines.aclose(),
                                                 self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None
        if self._service is not None and self._service.store is not None:
            self._service.store.close()
            self._service = None


def reward_function(url: str | None = None, *, critic: str | Critic | None = None,
                    reward: str = "verdict", token: str | None = None, timeout: float = 600.0,
                    model: str = "embedded", store: str | Path | None = None,
                    max_tokens: int = 1024, concurrency: int = 4,
                    **engine: Any) -> RewardFunction:
    """A TRL reward function scoring each completion with a critic: a server at ``url``
    (``token`` if it needs one) or ``critic`` (a name, with ``model``, ``store`` and engine
    options as ``criticlab serve`` takes them; or a critic object) in this process."""
    if (url is None) == (critic is None):
        raise ConfigError("give either url (a criticlab server) or critic (in process)")
    if reward not in REWARDS:
        raise ConfigError(f"unknown reward {reward!r}; choose from {', '.join(REWARDS)}")
    if url is not None:
        return RewardFunction(reward, url, token, timeout, None)
    from criticlab.engines import Engines, EngineSpec
    from criticlab.store import Store

    engines = Engines(EngineSpec(model=model, max_tokens=max_tokens, concurrency=concurrency,
                                 **engine), Store(store) if store is not None else None)
    if isinstance(critic, str):
        built, spec = engines.critic(critic), critic
    else:
        assert critic is not None
        built, spec = critic, critic.name
    service = Service(built, engines, identity={"critic": spec, "model": model,
                                                "max_tokens": max_tokens},
                      concurrency=concurrency, max_inflight=1 << 30)
    return RewardFunction(reward, None, None, timeout, service)


def _records(completions: Sequence[Any], kwargs: Mapping[str, Any], *, gold: bool
             ) -> list[dict[str, Any] | None]:
    """criticlab records of a TRL batch; ``None`` for a blank completion."""
    n = len(completions)
    prompts = _column(kwargs, "prompts", n)
    if prompts is None:
        raise ConfigError("the reward function needs the prompts (TRL passes prompts=...)")
    labels = _column(kwargs, "gold_first_error", n) or _column(kwargs, "label", n)
    if gold and labels is None:
        raise ConfigError("gold rewards need a gold_first_error or label column")
    refs = _column(kwargs, "reference_answer", n)
    out: list[dict[str, Any] | None] = []
    for i, c in enumerate(completions):
        question, solution = text_of(prompts[i]).strip(), text_of(c)
        if not solution.strip() or not question:
            out.append(None)
            continue
        rec: dict[str, Any] = {"id": str(i), "problem": question, "solution": solution}
        if gold and labels is not None:
            rec["label"] = labels[i]
        if refs is not None and refs[i] is not None:
            rec["reference_answer"] = str(refs[i])
        out.append(rec)
    return out


def _column(kwargs: Mapping[str, Any], name: str, n: int) -> list[Any] | None:
    values = kwargs.get(name)
    if values is None:
        return None
    if len(values) != n:
        raise ConfigError(f"column {name!r} has {len(values)} values for {n} completions")
    return list(values)
