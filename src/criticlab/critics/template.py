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

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from criticlab.errors import ConfigError
from criticlab.models.base import GenerateConfig, Generation, LanguageModel, Message, schema_text
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
        structured: bool = False,
    ) -> None:
        self.model = model
        self.config = config or GenerateConfig(temperature=0.0,
                                               max_tokens=self.default_max_tokens)
        self.template = load_template(template if template is not None
                                      else self.default_template, self.placeholders)
        self.structured = structured
        if structured and type(self).schema is TemplateCritic.schema:
            raise ConfigError(f"critic {self.name!r} has no structured form (--structured)")

    def values(self, problem: Problem, solution: Solution) -> dict[str, str]:
        """What fills each placeholder of the template."""
        return {"problem": problem.question, "steps": render_numbered(solution.steps)}

    def messages(self, problem: Problem, solution: Solution) -> list[Message]:
        """The exact messages sent to the model: the filled template, with the problem's
        images; in structured mode followed by what to write instead of the template's
        answer format (:meth:`structured_note`) and the schema."""
        body = fill(self.template, **self.values(problem, solution))
        if self.structured:
            schema = self.schema(problem, solution)
            body += (f"\n\n{self.structured_note()} Write only one JSON object that follows "
                     f"this JSON schema:\n{schema_text(schema or {})}")
        return [Message("user", body, problem.images)]

    # -- structured output: a schema per style, next to its parser ---------------------------
    def schema(self, problem: Problem, solution: Solution) -> dict[str, Any] | None:
        """The JSON schema of this critic's reply about ``solution`` (bounds such as the step
        count are part of it, per request); ``None`` when the style has none. A property
        ``reasoning`` (a string) comes first where the style lets the model think before it
        commits."""
        return None

    def structured_note(self) -> str:
        """One sentence, appended to the prompt in structured mode, saying where the answer
        the template asks for goes in the JSON (e.g. "The index you would put in \\boxed{}
        goes in first_error.")."""
        return "Instead of the answer format above, answer in JSON."

    def read_json(self, reply: Mapping[str, Any], problem: Problem,
                  solution: Solution) -> Critique:
        """The critique of a reply that is valid against :meth:`schema` (checked before)."""
        raise NotImplementedError

    def stop(self, n_steps: int) -> tuple[str, ...]:
        """Stop sequences for a solution of ``n_steps`` steps (added to the config's own)."""
        return ()

    def parse(self, text: str, problem: Problem, solution: Solution) -> Critique:
        raise NotImplementedError

    def read(self, gen: Generation, problem: Problem, solution: Solution) -> Critique:
        """The critique one generation gives, with its usage: a JSON object is checked
        against :meth:`schema` and read by :meth:`read_json` (a violation, such as an index
        out of range, is ``parsed=False``, never "correct"); any other text by
        :meth:`parse`. So a server that ignores the schema is still read."""
        crit = self.parse_reply(gen.text, problem, solution)
        return replace(crit, usage=crit.usage + gen.usage)

    def parse_reply(self, text: str, problem: Problem, solution: Solution) -> Critique:
        schema = self.schema(problem, solution)
        reply = json_reply(text) if schema is not None else None
        if reply is None:
            if self.structured and schema is not None:
                return Critique(raw=text, parsed=False, critic=self.name,
                                feedback="unparsed: no JSON object in the reply")
            return self.parse(text, problem, solution)
        problem_found = schema_violation(reply, schema or {})
        if problem_found is not None:
            return Critique(raw=text, parsed=False, critic=self.name,
                            feedback=f"unparsed: {problem_found}")
        return replace(self.read_json(reply, problem, solution), raw=text)

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
        if self.structured:  # the grammar ends the reply: no stop sequences
            config = replace(config, json_schema=schema_text(self.schema(problem, solution) or {}))
        else:
            config = replace(config, stop=config.stop + self.stop(len(solution.steps)))
        gens = await self.model.generate(self.messages(problem, solution), config)
        return [self.read(g, problem, solution) for g in gens]


def json_reply(text: str) -> dict[str, Any] | None:
    """The JSON object a reply consists of (a markdown code fence around it tolerated), or
    ``None`` when the reply is not one JSON object."""
    body = text.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.S)
    if fence:
        body = fence.group(1)
    if not body.startswith("{"):
        return None
    try:  # strict=False: a raw newline inside a string (some grammars allow one) is text
        value = json.loads(body, strict=False)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def schema_violation(reply: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    """Why ``reply`` does not follow ``schema`` (one line), ``None`` when it does. String
    lengths are not checked: they only bound how long a model may think."""
    import jsonschema

    try:
        jsonschema.validate(reply, _without_lengths(schema))
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "the reply"
        return f"{where}: {e.message}"
    return None


def _without_lengths(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_lengths(v) for k, v in schema.items()
                if k not in ("maxLength", "minLength")}
    if isinstance(schema, list):
        return [_without_lengths(v) for v in schema]
    return schema
