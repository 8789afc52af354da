"""An LM asked to critique, in named styles.

- ``processbench``: the official protocol of ProcessBench (Zheng et al. 2024, "ProcessBench:
  Identifying Process Errors in Mathematical Reasoning"): paragraphs tagged from 0, the
  earliest wrong paragraph's index (or -1) in the LAST ``\\boxed{}``.
- ``stepwise``: a verdict and a one-line reason per step, then an overall verdict.

Each style also has a structured form (``structured=True``): the JSON schema of its reply,
the reader of such a reply and the sentence that tells the model where its answer goes,
written in :mod:`criticlab.critics.parsing` next to the style's parser.

Prompts are text files under ``criticlab/prompts``; ``template=`` takes a user's own file
(for instance a paper's prompt word for word) with the placeholders ``{problem}`` and
``{steps}``. :class:`PromptedCritic` is a :class:`~criticlab.critics.template.TemplateCritic`
whose template, step rendering, stop sequences and parser come from its style; ``fill`` and
``load_template`` are re-exported from :mod:`criticlab.critics.template`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from criticlab.critics.parsing import (
    PROCESSBENCH_NOTE,
    STEPWISE_NOTE,
    critique_from_index,
    parse_boxed_index,
    parse_stepwise,
    processbench_schema,
    read_processbench_json,
    read_stepwise_json,
    stepwise_schema,
)
from criticlab.critics.template import PLACEHOLDERS, TemplateCritic, fill, load_template
from criticlab.errors import ConfigError
from criticlab.models.base import GenerateConfig, LanguageModel
from criticlab.steps import render_numbered, render_paragraphs
from criticlab.types import Critique, Problem, Solution, Usage

__all__ = ["PLACEHOLDERS", "STYLES", "PromptedCritic", "Style", "fill", "load_template",
           "render", "total_usage"]


@dataclass(frozen=True)
class Style:
    template: str
    render: Callable[[Sequence[str]], str]
    parse: Callable[[str, int, str], Critique]
    stop: Callable[[int], tuple[str, ...]] = lambda n_steps: ()
    """Stop sequences for a solution of n steps (the protocol's own decoding uses none)."""
    schema: Callable[[int, int], dict[str, Any]] | None = None
    """The JSON schema of a reply about a solution of n steps under a budget of max_tokens
    (``(n_steps, max_tokens)``); ``None``: the style has no structured form."""
    read_json: Callable[[Mapping[str, Any], int, str], Critique] | None = None
    """The critique of a reply valid against ``schema`` (``(reply, n_steps, critic)``)."""
    note: str = ""
    """Where the answer the template asks for goes in the JSON (one sentence)."""


def _parse_processbench(text: str, n_steps: int, critic: str) -> Critique:
    return critique_from_index(parse_boxed_index(text), n_steps, text, critic)


STYLES: dict[str, Style] = {
    "processbench": Style("processbench.txt", render_paragraphs, _parse_processbench,
                          schema=processbench_schema, read_json=read_processbench_json,
                          note=PROCESSBENCH_NOTE),
    # A verdict for a step the solution does not have means the model is rambling: stop there.
    "stepwise": Style("stepwise.txt", render_numbered, parse_stepwise,
                      lambda n: (f"\nStep {n + 1}:",), schema=stepwise_schema,
                      read_json=read_stepwise_json, note=STEPWISE_NOTE),
}


def render(template: str, problem: str, steps: str) -> str:
    """``fill`` with the two placeholders of a style's template."""
    return fill(template, problem=problem, steps=steps)


class PromptedCritic(TemplateCritic):
    """An LM critic in one of :data:`STYLES`. ``config`` is the decoding of a single
    critique (greedy by default); :meth:`sample` draws several critiques for voting."""

    def __init__(
        self,
        model: LanguageModel,
        style: str = "processbench",
        *,
        config: GenerateConfig | None = None,
        template: str | Path | None = None,
        structured: bool = False,
    ) -> None:
        if style not in STYLES:
            raise ConfigError(f"unknown critique style {style!r}; choose from {sorted(STYLES)}")
        if structured and (STYLES[style].schema is None or STYLES[style].read_json is None):
            raise ConfigError(f"critic {style!r} has no structured form (--structured)")
        self.style = style
        self.name = style
        self.default_template = STYLES[style].template
        super().__init__(model, config=config, template=template, structured=structured)

    def values(self, problem: Problem, solution: Solution) -> dict[str, str]:
        return {"problem": problem.question, "steps": STYLES[self.style].render(solution.steps)}

    def stop(self, n_steps: int) -> tuple[str, ...]:
        return STYLES[self.style].stop(n_steps)

    def parse(self, text: str, problem: Problem, solution: Solution) -> Critique:
        return STYLES[self.style].parse(text, len(solution.steps), self.name)

    def schema(self, problem: Problem, solution: Solution) -> dict[str, Any] | None:
        build = STYLES[self.style].schema
        return None if build is None else build(len(solution.steps), self.config.max_tokens)

    def structured_note(self) -> str:
        return STYLES[self.style].note or super().structured_note()

    def read_json(self, reply: Mapping[str, Any], problem: Problem,
                  solution: Solution) -> Critique:
        read = STYLES[self.style].read_json
        if read is None:
            raise NotImplementedError(f"style {self.style!r} has no structured form")
        return read(reply, len(solution.steps), self.name)


def total_usage(critiques: Sequence[Critique]) -> Usage:
    out = Usage()
    for c in critiques:
        out = out + c.usage
    return out
