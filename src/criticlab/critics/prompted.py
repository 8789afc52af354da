"""An LM asked to critique, in named styles.

- ``processbench``: ProcessBench's official protocol (ALGORITHMS.md §1): paragraphs tagged
  from 0, the earliest wrong paragraph's index (or -1) in the LAST ``\\boxed{}``.
- ``stepwise``: a verdict and a one-line reason per step, then an overall verdict.

Prompts are text files under ``criticlab/prompts``; ``template=`` takes a user's own file
(for instance a paper's prompt word for word) with the placeholders ``{problem}`` and
``{steps}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from criticlab.critics.parsing import critique_from_index, parse_boxed_index, parse_stepwise
from criticlab.errors import ConfigError
from criticlab.models.base import GenerateConfig, Generation, LanguageModel, Message
from criticlab.steps import render_numbered, render_paragraphs
from criticlab.types import Critique, Problem, Solution, Usage


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

PLACEHOLDERS = ("{problem}", "{steps}")


def load_template(name_or_path: str | Path, placeholders: Sequence[str] = PLACEHOLDERS) -> str:
    """A packaged prompt by file name, or a user's template file by path; it must contain
    each of ``placeholders``."""
    path = Path(name_or_path)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the template: {e}") from e
    else:
        try:
            text = resources.files("criticlab.prompts").joinpath(str(name_or_path)).read_text(
                encoding="utf-8"
            )
        except FileNotFoundError as e:
            raise ConfigError(f"{name_or_path}: no such template file") from e
    missing = [p for p in placeholders if p not in text]
    if missing:
        raise ConfigError(f"{name_or_path}: the template lacks {', '.join(missing)}")
    return text


def render(template: str, problem: str, steps: str) -> str:
    return fill(template, problem=problem, steps=steps)


def fill(template: str, **values: str) -> str:
    """Replace each ``{name}``; plain replacement, not str.format, because prompts are full of
    LaTeX braces."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


class PromptedCritic:
    """An LM critic. ``config`` is the decoding of a single critique (greedy by default);
    :meth:`sample` draws several critiques for voting."""

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
        self.model = model
        self.style = style
        self.config = config or GenerateConfig(temperature=0.0, max_tokens=1024)
        self.template = load_template(template if template is not None else STYLES[style].template)
        self.name = style

    def messages(self, problem: Problem, solution: Solution) -> list[Message]:
        """The exact messages sent to the model."""
        body = render(self.template, problem.question, STYLES[self.style].render(solution.steps))
        return [Message("user", body, problem.images)]

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        return (await self._run(problem, solution, replace(self.config, n=1)))[0]

    async def sample(
        self,
        problem: Problem,
        solution: Solution,
        n: int,
        *,
        temperature: float = 1.0,
        top_p: float = 0.9,
    ) -> list[Critique]:
        """``n`` sampled critiques (ProcessBench's maj@n decoding by default)."""
        config = replace(self.config, n=n, temperature=temperature, top_p=top_p)
        return await self._run(problem, solution, config)

    async def _run(
        self, problem: Problem, solution: Solution, config: GenerateConfig
    ) -> list[Critique]:
        n_steps = len(solution.steps)
        stop = config.stop + STYLES[self.style].stop(n_steps)
        gens = await self.model.generate(
            self.messages(problem, solution), replace(config, stop=stop)
        )
        return [self._parse(g, len(solution.steps)) for g in gens]

    def _parse(self, gen: Generation, n_steps: int) -> Critique:
        crit = STYLES[self.style].parse(gen.text, n_steps, self.name)
        return replace(crit, usage=crit.usage + gen.usage)


def total_usage(critiques: Sequence[Critique]) -> Usage:
    out = Usage()
    for c in critiques:
        out = out + c.usage
    return out
