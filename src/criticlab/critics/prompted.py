"""An LM asked to critique, in named styles.

- ``processbench``: the official protocol of ProcessBench (Zheng et al. 2024, "ProcessBench:
  Identifying Process Errors in Mathematical Reasoning"): paragraphs tagged from 0, the
  earliest wrong paragraph's index (or -1) in the LAST ``\\boxed{}``.
- ``stepwise``: a verdict and a one-line reason per step, then an overall verdict.

Prompts are text files under ``criticlab/prompts``; ``template=`` takes a user's own file
(for instance a paper's prompt word for word) with the placeholders ``{problem}`` and
``{steps}``. :class:`PromptedCritic` is a :class:`~criticlab.critics.template.TemplateCritic`
whose template, step rendering, stop sequences and parser come from its style; ``fill`` and
``load_template`` are re-exported from :mod:`criticlab.critics.template`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from criticlab.critics.parsing import critique_from_index, parse_boxed_index, parse_stepwise
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


def _parse_processbench(text: str, n_steps: int, critic: str) -> Critique:
    return critique_from_index(parse_boxed_index(text), n_steps, text, critic)


STYLES: dict[str, Style] = {
    "processbench": Style("processbench.txt", render_paragraphs, _parse_processbench),
    # A verdict for a step the solution does not have means the model is rambling: stop there.
    "stepwise": Style("stepwise.txt", render_numbered, parse_stepwise,
                      lambda n: (f"\nStep {n + 1}:",)),
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
    ) -> None:
        if style not in STYLES:
            raise ConfigError(f"unknown critique style {style!r}; choose from {sorted(STYLES)}")
        self.style = style
        self.name = style
        self.default_template = STYLES[style].template
        super().__init__(model, config=config, template=template)

    def values(self, problem: Problem, solution: Solution) -> dict[str, str]:
        return {"problem": problem.question, "steps": STYLES[self.style].render(solution.steps)}

    def stop(self, n_steps: int) -> tuple[str, ...]:
        return STYLES[self.style].stop(n_steps)

    def parse(self, text: str, problem: Problem, solution: Solution) -> Critique:
        return STYLES[self.style].parse(text, len(solution.steps), self.name)


def total_usage(critiques: Sequence[Critique]) -> Usage:
    out = Usage()
    for c in critiques:
        out = out + c.usage
    return out
