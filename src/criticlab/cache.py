"""A model that answers repeated requests from the store: :class:`CachedModel` wraps any
:class:`~criticlab.models.base.LanguageModel` (and a step scorer's ``score_steps``) over a
:class:`~criticlab.store.Store`, keyed by :func:`~criticlab.store.request_key`."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from criticlab.errors import ConfigError, ModelError
from criticlab.models.base import (
    GenerateConfig,
    Generation,
    LanguageModel,
    Message,
    StepScores,
)
from criticlab.store import Store, request_key
from criticlab.types import Usage

log = logging.getLogger(__name__)


@dataclass
class CacheStats:
    calls: int = 0
    """Requests sent to the engine."""
    hits: int = 0
    """Samples answered from the store."""


@dataclass(frozen=True)
class _StepScoring(GenerateConfig):
    """The parameters of a step-scoring request in :func:`request_key`: a marker in place of
    sampling parameters, so its key never equals a text request's (whose parameters always
    name a temperature)."""

    seed: int | None = None

    def params(self) -> dict[str, Any]:
        return {"task": "score_steps"}


_SCORE_STEPS = _StepScoring()


class CachedModel:
    """A :class:`LanguageModel` that answers repeated requests from a :class:`Store`.

    Missing samples of an n-sample request are asked of the engine in contiguous runs; the
    run starting at sample ``a`` is sent with ``seed + a`` so that samples stay reproducible
    on engines that honour seeds. Concurrent identical requests share one engine call.

    Around a step scorer (a PRM, :mod:`criticlab.models.prm`) :meth:`score_steps` is cached
    the same way: the request is the messages ``[user: question, assistant: step 1, ...]``
    with a ``score_steps`` marker for parameters, the response a :class:`Generation` whose
    text is the JSON list of the scores (so the ``responses`` table and every store that
    keeps generations keep scores unchanged).
    """

    def __init__(self, model: LanguageModel, store: Store | None) -> None:
        self.model = model
        self.name = model.name
        self.store = store
        self.stats = CacheStats()
        self._inflight: dict[str, asyncio.Future[Generation]] = {}

    async def aclose(self) -> None:
        """Close the wrapped model's connections, if it holds any."""
        close = getattr(self.model, "aclose", None)
        if close is not None:
            await close()

    async def generate(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]:
        if self.store is None:
            self.stats.calls += 1
            return await self.model.generate(messages, config)
        keys = [request_key(self.name, messages, config, i) for i in range(config.n)]
        out: list[Generation | None] = [None] * config.n
        waiting: dict[int, asyncio.Future[Generation]] = {}
        missing: list[int] = []
        for i, key in enumerate(keys):
            if key in self._inflight:
                waiting[i] = self._inflight[key]
                continue
            hit = self.store.get_response(key)
            if hit is not None:
                self.stats.hits += 1
                out[i] = _as_cached(hit)
            else:
                missing.append(i)
        loop = asyncio.get_running_loop()
        mine = {i: loop.create_future() for i in missing}
        for i, fut in mine.items():
            self._inflight[keys[i]] = fut
        try:
            for start, stop in _runs(missing):
                sub = replace(
                    config,
                    n=stop - start,
                    seed=None if config.seed is None else config.seed + start,
                )
                self.stats.calls += 1
                gens = await self.model.generate(messages, sub)
                if len(gens) != stop - start:
                    raise RuntimeError(
                        f"{self.name} returned {len(gens)} samples for n={stop - start}"
                    )
                for i, gen in zip(range(start, stop), gens, strict=True):
                    request = {
                        "messages": [m.to_dict() for m in messages],
                        "params": config.params(),
                        "seed": config.seed,
                        "index": i,
                    }
                    self.store.put_response(keys[i], self.name, request, gen)
                    out[i] = gen
                    mine[i].set_result(gen)
        except BaseException as e:
            for fut in mine.values():
                if not fut.done():
                    fut.set_exception(e)
                    fut.exception()  # mark retrieved: the caller below sees it instead
            raise
        finally:
            for i in mine:
                self._inflight.pop(keys[i], None)
        for i, fut in waiting.items():
            out[i] = _as_cached(await asyncio.shield(fut))
            self.stats.hits += 1
        return [g for g in out if g is not None]

    async def score_steps(self, question: str, steps: Sequence[str]) -> StepScores:
        """The wrapped engine's step scores (``score_steps``), from the store when it holds
        them (``usage.cached``), else from one engine call, stored when well formed (one
        finite number per step). Concurrent identical requests share one call. The engine
        is looked up only when the store cannot answer (a lazily built one stays unbuilt)."""
        steps = tuple(steps)
        if not steps:
            return StepScores(())
        if self.store is None:
            self.stats.calls += 1
            return _checked(await self._scorer()(question, steps), len(steps), self.name)
        messages = [Message("user", question), *(Message("assistant", s) for s in steps)]
        key = request_key(self.name, messages, _SCORE_STEPS, 0)
        if key in self._inflight:
            gen = await asyncio.shield(self._inflight[key])
            self.stats.hits += 1
            return _scores_of(_as_cached(gen), len(steps), self.name)
        hit = self.store.get_response(key)
        if hit is not None:
            try:
                scores = _scores_of(_as_cached(hit), len(steps), self.name)
            except ValueError as e:  # not written by this method: compute it again
                log.warning("%s; computing the scores again", e)
            else:
                self.stats.hits += 1
                return scores
        fut: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            self.stats.calls += 1
            scored = _checked(await self._scorer()(question, steps), len(steps), self.name)
            gen = Generation(json.dumps(list(scored.scores)), usage=scored.usage)
            request = {"messages": [m.to_dict() for m in messages],
                       "params": _SCORE_STEPS.params(), "seed": _SCORE_STEPS.seed, "index": 0}
            self.store.put_response(key, self.name, request, gen)
            fut.set_result(gen)
            return scored
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: the caller below sees it instead
            raise
        finally:
            self._inflight.pop(key, None)

    def _scorer(self) -> Any:
        try:
            return self.model.score_steps  # type: ignore[attr-defined]
        except AttributeError:
            raise ConfigError(f"{self.name} does not score steps (a process reward model "
                              "does: prm:DIR)") from None


def _checked(scored: StepScores, n: int, name: str) -> StepScores:
    """``scored`` when it holds one finite score per step; else a ``ModelError``."""
    if len(scored.scores) != n or not all(math.isfinite(s) for s in scored.scores):
        raise ModelError(f"{name} scored {n} steps as {list(scored.scores)!r}")
    return scored


def _scores_of(gen: Generation, n: int, name: str) -> StepScores:
    """The step scores a stored generation holds; ``ValueError`` when it holds no ``n``
    finite numbers."""
    try:
        scores = json.loads(gen.text)
        ok = (isinstance(scores, list) and len(scores) == n
              and all(isinstance(s, (int, float)) and not isinstance(s, bool)
                      and math.isfinite(s) for s in scores))
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: the stored step scores {gen.text[:80]!r} are not {n} numbers")
    return StepScores(tuple(float(s) for s in scores), gen.usage)


def _as_cached(gen: Generation) -> Generation:
    u = gen.usage
    return replace(gen, usage=Usage(u.prompt_tokens, u.completion_tokens, calls=0, cached=1))


def _runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous runs of sorted indices as half-open ranges: [0,1,2,5] -> [(0,3),(5,6)]."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs
