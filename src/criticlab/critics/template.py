"""LM critics made of one prompt template and a parser of the model's reply.

:func:`fill` is the one way a prompt is filled, everywhere in criticlab: one pass over the
template, so a value that itself contains ``{steps}`` or ``{problem}`` (a LaTeX problem, a
solution that quotes a placeholder) reaches the model verbatim. :func:`load_template` reads a
packaged prompt (``criticlab/prompts``) or a user's own file. :class:`TemplateCritic` is the
base of every single-prompt LM critic: the ProcessBench and stepwise styles
(:class:`~criticlab.critics.prompted.PromptedCritic`), deliberate, principles, rubric, premise
and selfeval. Its :meth:`~TemplateCritic.messages` sends ``problem.images`` with the prompt,
so each of them works with vision-language models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path

from criticlab.errors import ConfigError
from criticlab.models.base import GenerateConfig, Generation, LanguageModel, Message
from criticlab.steps import render_numbered
from criticlab.types import Critique, Problem, Solution

PLACEHOLDERS = ("{problem}", "{steps}")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(template: str, **values: str) -> str:
    """Replace each ``{name}`` of ``values`` in one pass: text a value brings in is never
    replaced again, and a ``{name}`` with no value stays as written. Plain replacement, not
    ``str.format``, because prompts are full of LaTeX braces."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


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


class TemplateCritic:
    """An LM critic made of one prompt template and a parser of the model's text. Subclasses
    set ``name`` and ``default_template`` (and ``placeholders``, which a user's template must
    contain) and implement :meth:`parse`; :meth:`values` says what fills the template
    (``{problem}`` and numbered ``{steps}`` by default). ``config`` is the decoding of a
    single critique (greedy); :meth:`sample` draws several for voting."""

    name = "template"
    default_template = ""
    placeholders: Sequence[str] = PLACEHOLDERS
    default_max_tokens = 1024

    def __init__(
        self,
        model: LanguageModel,
        *,
        config: GenerateConfig | None = None,
        template: str | Path | None = None,
    ) -> None:
        self.model = model
        self.config = config or GenerateConfig(temperature=0.0,
                                               max_tokens=self.default_max_tokens)
        self.template = load_template(template if template is not None
                                      else self.default_template, self.placeholders)

    def values(self, problem: Problem, solution: Solution) -> dict[str, str]:
        """What fills each placeholder of the template."""
        return {"problem": problem.question, "steps": render_numbered(solution.steps)}

    def messages(self, problem: Problem, solution: Solution) -> list[Message]:
        """The exact messages sent to the model: the filled template, with the problem's
        images."""
        body = fill(self.template, **self.values(problem, solution))
        return [Message("user", body, problem.images)]

    def stop(self, n_steps: int) -> tuple[str, ...]:
        """Stop sequences for a solution of ``n_steps`` steps (added to the config's own)."""
        return ()

    def parse(self, text: str, problem: Problem, solution: Solution) -> Critique:
        raise NotImplementedError

    def read(self, gen: Generation, problem: Problem, solution: Solution) -> Critique:
        """The critique one generation gives: :meth:`parse` of its text, with its usage."""
        crit = self.parse(gen.text, problem, solution)
        return replace(crit, usage=crit.usage + gen.usage)

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        return (await self._run(problem, solution, replace(self.config, n=1)))[0]

    async def sample(
        self, problem: Problem, solution: Solution, n: int, *,
        temperature: float = 1.0, top_p: float = 0.9,
    ) -> list[Critique]:
        """``n`` sampled critiques (for voting; ProcessBench's maj@n decoding by default)."""
        config = replace(self.config, n=n, temperature=temperature, top_p=top_p)
        return await self._run(problem, solution, config)

    async def _run(
        self, problem: Problem, solution: Solution, config: GenerateConfig
    ) -> list[Critique]:
        config = replace(config, stop=config.stop + self.stop(len(solution.steps)))
        gens = await self.model.generate(self.messages(problem, solution), config)
        return [self.read(g, problem, solution) for g in gens]
