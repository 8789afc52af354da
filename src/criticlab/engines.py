"""Where a job's models and critics are built: one place, for every job and executor.

A job names its engines in an :class:`EngineSpec` (the critic's model, the actor that writes
solutions, and how to reach them). :class:`Engines` builds each named model once per process
(the driver's, or each Ray worker's), through :func:`criticlab.registry.make_model`, wrapped in
the run's store (:class:`~criticlab.cache.CachedModel`), and builds critics through
:func:`criticlab.registry.make_critic`. A model is loaded on its first request only
(:class:`LazyModel`), so a run whose requests are all stored never loads its engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from criticlab.cache import CachedModel
from criticlab.critics.base import Critic
from criticlab.models.base import GenerateConfig, Generation, LanguageModel, Message
from criticlab.store import Store


@dataclass(frozen=True)
class EngineSpec:
    """Which engines a job uses; the actor defaults to the critic's model."""

    model: str = "embedded"
    actor: str | None = None
    base_url: str | None = None
    threads: int | None = None
    timeout: float = 120.0
    concurrency: int = 4
    max_tokens: int = 1024
    structured: bool = False
    """LM critics reply in their JSON schema, decoding constrained by the engine."""


class LazyModel:
    """The engine ``spec`` names, built on its first request. Its ``name`` (part of every
    cache key) is known from the spec without building it."""

    def __init__(self, spec: str, engines: EngineSpec) -> None:
        from criticlab.models.spec import ModelSpec

        self.spec = spec
        self.engines = engines
        self.name = ModelSpec.parse(spec).name
        self._model: LanguageModel | None = None

    @property
    def built(self) -> bool:
        return self._model is not None

    def model(self) -> LanguageModel:
        if self._model is None:
            from criticlab.registry import make_model

            e = self.engines
            self._model = make_model(self.spec, base_url=e.base_url, threads=e.threads,
                                     timeout=e.timeout, concurrency=e.concurrency)
        return self._model

    async def generate(self, messages: Sequence[Message],
                       config: GenerateConfig) -> list[Generation]:
        return await self.model().generate(messages, config)

    def __getattr__(self, attr: str) -> Any:  # what else the engine offers (score_steps, ...)
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.model(), attr)

    async def aclose(self) -> None:
        close = getattr(self._model, "aclose", None) if self._model is not None else None
        if close is not None:
            await close()


class Engines:
    """Builds each named model once, wrapped in the store, loaded on first use. ``given``
    maps model specs to model objects used in their place (``label_mc(model=...)``); those
    belong to the caller and are not closed here. With no store (``--no-cache``) every request
    goes to its engine."""

    def __init__(self, spec: EngineSpec, store: Store | None,
                 given: Mapping[str, LanguageModel] | None = None) -> None:
        self.spec = spec
        self.store = store
        self.given = dict(given or {})
        self.built: dict[str, CachedModel] = {}

    def get(self, name: str) -> CachedModel:
        if name not in self.built:
            inner = self.given.get(name) or LazyModel(name, self.spec)
            self.built[name] = CachedModel(inner, self.store)
        return self.built[name]

    def model(self, spec: str | None = None) -> CachedModel:
        """The engine ``spec`` names (default: the critic's model); what critic factories
        receive as ``model``."""
        return self.get(spec or self.spec.model)

    def actor(self) -> CachedModel:
        return self.get(self.spec.actor or self.spec.model)

    def critic(self, spec: str, *, samples: int = 1, template: str | None = None) -> Critic:
        from criticlab.registry import make_critic

        return make_critic(spec, self.model, samples=samples, template=template,
                           max_tokens=self.spec.max_tokens, structured=self.spec.structured)

    async def aclose(self) -> None:
        for name, m in self.built.items():
            if name not in self.given:
                await m.aclose()

    def stats(self) -> dict[str, int]:
        return {"engine_calls": sum(m.stats.calls for m in self.built.values()),
                "store_hits": sum(m.stats.hits for m in self.built.values())}
