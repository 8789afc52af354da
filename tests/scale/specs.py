"""Work specs for the Ray tests; pickled by value, so the workers need not import tests/."""

from __future__ import annotations

from typing import Any

from criticlab.cache import CachedModel
from criticlab.errors import ModelError
from criticlab.models.base import GenerateConfig, Message
from criticlab.models.scripted import ScriptedModel
from criticlab.scale.worker import Work
from criticlab.store import Store


def echo_spec(store: Store) -> Work:
    """Answers item ``q`` with ``Q`` through a stored model; item ``down`` is an engine error."""
    model = CachedModel(ScriptedModel(lambda m, c, i: m[0].content.upper(), name="echo"), store)

    async def run(q: str) -> dict[str, Any]:
        if q == "down":
            raise ModelError("server down")
        (gen,) = await model.generate([Message("user", q)], GenerateConfig(max_tokens=8))
        return {"answer": gen.text}

    return Work(run, [model])
