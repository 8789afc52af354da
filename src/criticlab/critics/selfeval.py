"""Self-evaluation by P(True) (Kadavath et al. 2022, "Language Models (Mostly) Know What They
Know"): ask whether a proposed answer is true and read the probability of the "True" option
from the token logprobs of the model's reply, normalised over the two options.

The prompt (``selfeval.txt``) ends with "Is the proposed answer: (A) True (B) False. The
proposed answer is:". The reply is generated greedily with ``logprobs`` and ``top_logprobs``
(10 by default) for a few tokens. At the first reply position whose top list holds an option,
``P(True) = P(A) / (P(A) + P(B))``, where P(A) sums the probabilities of every listed token
that reads as option A (" A", "A", "(A", "A)", "True", "true", ...) and P(B) likewise. Positions
before it are skipped only when their token carries no content (whitespace, "(", "*", ":"),
since a chat model often opens with "(" and names the letter next. An option missing from the
top list counts as probability 0 (so one option alone gives 1.0 or 0.0).

The :class:`Critique`: ``score = P(True)``, verdict "correct" when ``score >= 0.5``, steps all
"unknown", no first error. ``parsed=False`` when neither option appears (or the engine gave
no logprobs). The proposed answer is :func:`~criticlab.grading.solution_answer`, or the
whole solution text when it has none. Other answers (Kadavath's "brainstormed" samples) are
shown first when ``problem.metadata["other_answers"]`` holds a list of strings. The prompt
goes with ``problem.images``.

Structured (``structured=True``), the reply is ``{"answer": "True"}`` or ``{"answer":
"False"}`` and P(True) is read at the position of the answer's first character, from the
same top list (``"True"`` and ``"False"`` read as the options). When the engine gives no
logprobs, or none that list an option there, the JSON answer itself is read: score 1.0 for
"True", 0.0 for "False", and the feedback says so. A reply that begins with ``{`` is read
this way in free-text mode too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from criticlab.critics.parsing import obj
from criticlab.critics.template import TemplateCritic, json_reply, schema_violation
from criticlab.grading import solution_answer
from criticlab.models.base import GenerateConfig, Generation, LanguageModel, TokenLogprob
from criticlab.types import Critique, Problem, Solution, StepVerdict

PLACEHOLDERS = ("{problem}", "{answer}", "{others}")
_NEUTRAL = re.compile(r"^[\s(\[*_:\"'`.]*$")


def option_of(token: str) -> str | None:
    """``"A"`` or ``"B"`` when ``token`` reads as that option (" A", "(A", "A)", "**A",
    "True", " false", ...), else ``None``."""
    t = token.strip().strip("()[]*_:.\"'` ").strip()
    if t in ("A", "a") or t.lower() == "true":
        return "A"
    if t in ("B", "b") or t.lower() == "false":
        return "B"
    return None


def option_masses(position: TokenLogprob) -> tuple[float, float]:
    """(P(A), P(B)) at one reply position, summed over its top list (the chosen token alone
    when the list is empty). A token listed twice counts once."""
    top = position.top or ((position.token, position.logprob),)
    masses = {"A": 0.0, "B": 0.0}
    for token, logprob in dict(top).items():
        opt = option_of(token)
        if opt is not None:
            masses[opt] += math.exp(logprob)
    return masses["A"], masses["B"]


def p_true(logprobs: Sequence[TokenLogprob] | None) -> float | None:
    """P(A) / (P(A) + P(B)) at the first position that lists an option, skipping positions
    whose chosen token carries no content; ``None`` when no option is found."""
    for position in logprobs or ():
        a, b = option_masses(position)
        if a + b > 0:
            return a / (a + b)
        if not _NEUTRAL.match(position.token):
            return None
    return None


def render_others(others: Sequence[str]) -> str:
    if not others:
        return ""
    listed = "\n".join(f"- {o.strip()}" for o in others)
    return f"Here are some brainstormed answers:\n{listed}\n"


def parse_p_true(gen: Generation, n_steps: int, critic: str) -> Critique:
    """The critique one reply gives (see the module docstring), with the reply's usage."""
    steps = tuple(StepVerdict(i, "unknown") for i in range(n_steps))
    if gen.logprobs is None:
        return Critique(steps, raw=gen.text, parsed=False, critic=critic,
                        usage=gen.usage, feedback="unparsed: the engine gave no logprobs")
    p = p_true(gen.logprobs)
    if p is None:
        return Critique(steps, raw=gen.text, parsed=False, critic=critic,
                        usage=gen.usage,
                        feedback="unparsed: neither (A) nor (B) among the top logprobs")
    return Critique(steps, None, "correct" if p >= 0.5 else "incorrect",
                    f"P(True) = {p:.3f}", score=p, raw=gen.text, critic=critic,
                    usage=gen.usage)


# -- the structured form ---------------------------------------------------------------------------
SELFEVAL_SCHEMA: dict[str, Any] = obj({"answer": {"enum": ["True", "False"]}})
SELFEVAL_NOTE = "Your answer goes in answer: True for (A), False for (B)."
STRUCTURED_MAX_TOKENS = 16
"""The least ``max_tokens`` of a structured reply: the JSON around the answer takes a few
tokens before it and after it."""
_ANSWER_KEY = re.compile(r'\s*\{\s*"answer"\s*:\s*"')


def answer_position(logprobs: Sequence[TokenLogprob]) -> TokenLogprob | None:
    """The reply position that holds the first character of the answer's value in
    ``{"answer": "..."}`` (the tokens joined as written), ``None`` when there is none."""
    text = ""
    for position in logprobs:
        text += position.token
        m = _ANSWER_KEY.match(text)
        if m and m.end() < len(text):
            return position
    return None


def _json_option_masses(position: TokenLogprob) -> tuple[float, float]:
    """:func:`option_masses` where a token may also carry the JSON around the value
    (``"True``, ``False"}``)."""
    top = position.top or ((position.token, position.logprob),)
    masses = {"true": 0.0, "false": 0.0}
    for token, logprob in dict(top).items():
        word = token.strip().strip('{}",').strip().lower()
        if word in masses:
            masses[word] += math.exp(logprob)
    return masses["true"], masses["false"]


def parse_p_true_json(gen: Generation, n_steps: int, critic: str) -> Critique:
    """The critique of a JSON reply (see the module docstring), with the reply's usage."""
    steps = tuple(StepVerdict(i, "unknown") for i in range(n_steps))
    reply = json_reply(gen.text)
    why = None if reply is None else schema_violation(reply, SELFEVAL_SCHEMA)
    if why is not None:
        return Critique(steps, raw=gen.text, parsed=False, critic=critic, usage=gen.usage,
                        feedback=f"unparsed: {why}")
    position = answer_position(gen.logprobs or ())
    if position is not None:
        a, b = _json_option_masses(position)
        if a + b > 0:
            p = a / (a + b)
            return Critique(steps, None, "correct" if p >= 0.5 else "incorrect",
                            f"P(True) = {p:.3f}", score=p, raw=gen.text, critic=critic,
                            usage=gen.usage)
    if reply is None:
        return Critique(steps, raw=gen.text, parsed=False, critic=critic, usage=gen.usage,
                        feedback="unparsed: no JSON object in the reply")
    lacking = "no logprobs" if gen.logprobs is None else "no option in the logprobs"
    return read_selfeval_json(reply, n_steps, critic, lacking, gen)


def read_selfeval_json(reply: Mapping[str, Any], n_steps: int, critic: str,
                       lacking: str = "no logprobs", gen: Generation | None = None
                       ) -> Critique:
    """A reply valid against :data:`SELFEVAL_SCHEMA` read by its answer alone: P(True) is
    1.0 or 0.0."""
    gen = gen or Generation("")
    p = 1.0 if reply["answer"] == "True" else 0.0
    return Critique(tuple(StepVerdict(i, "unknown") for i in range(n_steps)), None,
                    "correct" if p else "incorrect",
                    f"P(True) = {p:.3f} (the answer {reply['answer']}: {lacking})", score=p,
                    raw=gen.text, critic=critic, usage=gen.usage)


class SelfEvalCritic(TemplateCritic):
    """P(True) self-evaluation (see the module docstring). ``top_logprobs``: how many
    alternatives the engine reports per position; ``max_tokens``: how many reply positions
    may be searched for an option. It judges the final answer only, never the steps. It
    does not :meth:`sample`: P(True) is read from one greedy reply's logprobs."""

    name = "selfeval"
    default_template = "selfeval.txt"
    placeholders = PLACEHOLDERS
    # Not a SamplingCritic: votes over resampled P(True) readings would repeat one number.
    sample = None  # type: ignore[assignment]

    def __init__(
        self,
        model: LanguageModel,
        *,
        top_logprobs: int = 10,
        max_tokens: int = 3,
        template: str | Path | None = None,
        seed: int | None = 0,
        structured: bool = False,
    ) -> None:
        if structured:  # the JSON around the answer needs tokens of its own
            max_tokens = max(max_tokens, STRUCTURED_MAX_TOKENS)
        config = GenerateConfig(temperature=0.0, max_tokens=max_tokens, seed=seed,
                                logprobs=True, top_logprobs=top_logprobs)
        super().__init__(model, config=config, template=template, structured=structured)

    def values(self, problem: Problem, solution: Solution) -> dict[str, str]:
        answer = solution_answer(solution) or "\n".join(solution.steps)
        others = problem.metadata.get("other_answers") or ()
        if isinstance(others, str) or not all(isinstance(o, str) for o in others):
            others = ()
        return {"problem": problem.question.strip(), "answer": answer.strip(),
                "others": render_others(list(others))}

    def read(self, gen: Generation, problem: Problem, solution: Solution) -> Critique:
        if self.structured or gen.text.lstrip().startswith("{"):
            return parse_p_true_json(gen, len(solution.steps), self.name)
        return parse_p_true(gen, len(solution.steps), self.name)

    def schema(self, problem: Problem, solution: Solution) -> dict[str, Any] | None:
        return SELFEVAL_SCHEMA

    def structured_note(self) -> str:
        return SELFEVAL_NOTE

    def read_json(self, reply: Mapping[str, Any], problem: Problem,
                  solution: Solution) -> Critique:
        return read_selfeval_json(reply, len(solution.steps), self.name)

    def parse(self, text: str, problem: Problem, solution: Solution) -> Critique:
        """Text alone carries no logprobs: always unparsed (:meth:`read` reads a reply)."""
        return parse_p_true(Generation(text), len(solution.steps), self.name)
