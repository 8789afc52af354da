"""A deterministic model for unit tests of parsing and control flow (never for quality)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from criticlab.models.base import GenerateConfig, Generation, Message
from criticlab.types import Usage

Script = Callable[[Sequence[Message], GenerateConfig, int], str]


class ScriptedModel:
    """Returns scripted texts. ``outputs`` is either a list consumed in order (cycling when
    ``cycle=True``), or a function ``(messages, config, sample_index) -> text``.

    Every request is recorded in ``requests`` so tests can assert what was sent."""

    def __init__(
        self, outputs: Sequence[str] | Script, *, name: str = "scripted", cycle: bool = False
    ) -> None:
        self.name = name
        self._outputs = outputs
        self._cycle = cycle
        self._pos = 0
        self.requests: list[tuple[tuple[Message, ...], GenerateConfig]] = []

    async def generate(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]:
        self.requests.append((tuple(messages), config))
        prompt_tokens = sum(len(m.content.split()) for m in messages)
        gens = []
        for i in range(config.n):
            text = self._next(messages, config, i)
            usage = Usage(
                prompt_tokens=prompt_tokens if i == 0 else 0,
                completion_tokens=len(text.split()),
                calls=1 if i == 0 else 0,
            )
            gens.append(Generation(text=text, usage=usage, finish_reason="stop"))
        return gens

    def _next(self, messages: Sequence[Message], config: GenerateConfig, i: int) -> str:
        if callable(self._outputs):
            return self._outputs(messages, config, i)
        outputs = list(self._outputs)
        if self._pos >= len(outputs):
            if not self._cycle or not outputs:
                raise IndexError(f"ScriptedModel ran out of outputs after {self._pos}")
            self._pos = 0
        text = outputs[self._pos]
        self._pos += 1
        return text
