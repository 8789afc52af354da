"""Self-evaluation by P(True) (Kadavath et al. 2022, ALGORITHMS.md §2): ask whether a proposed
answer is true and read the probability of the "True" option from the token logprobs of the
model's reply, normalised over the two options.

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
no logprobs). The proposed answer is :func:`~criticlab.critics.answer.solution_answer`, or the
whole solution text when it has none. Other answers (Kadavath's "brainstormed" samples) are
shown first when ``problem.metadata["other_answers"]`` holds a list of strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from criticlab.critics.answer import solution_answer
from criticlab.critics.prompted import fill, load_template
from criticlab.models.base import GenerateConfig, Generation, LanguageModel, Message, TokenLogprob
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


class SelfEvalCritic:
    """P(True) self-evaluation (see the module docstring). ``top_logprobs``: how many
    alternatives the engine reports per position; ``max_tokens``: how many reply positions
    may be searched for an option. It judges the final answer only, never the steps."""

    name = "selfeval"

    def __init__(
        self,
        model: LanguageModel,
        *,
        top_logprobs: int = 10,
        max_tokens: int = 3,
        template: str | Path | None = None,
        seed: int | None = 0,
    ) -> None:
        self.model = model
        self.config = GenerateConfig(temperature=0.0, max_tokens=max_tokens, seed=seed,
                                     logprobs=True, top_logprobs=top_logprobs)
        self.template = load_template(template if template is not None else "selfeval.txt",
                                      PLACEHOLDERS)

    def messages(self, problem: Problem, solution: Solution) -> list[Message]:
        """The exact messages sent to the model."""
        answer = solution_answer(solution) or "\n".join(solution.steps)
        others = problem.metadata.get("other_answers") or ()
        if isinstance(others, str) or not all(isinstance(o, str) for o in others):
            others = ()
        body = fill(self.template, problem=problem.question.strip(), answer=answer.strip(),
                    others=render_others(list(others)))
        return [Message("user", body)]

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        gens = await self.model.generate(self.messages(problem, solution), self.config)
        return self.parse(gens[0], len(solution.steps))

    def parse(self, gen: Generation, n_steps: int) -> Critique:
        steps = tuple(StepVerdict(i, "unknown") for i in range(n_steps))
        if gen.logprobs is None:
            return Critique(steps, raw=gen.text, parsed=False, critic=self.name,
                            usage=gen.usage, feedback="unparsed: the engine gave no logprobs")
        p = p_true(gen.logprobs)
        if p is None:
            return Critique(steps, raw=gen.text, parsed=False, critic=self.name,
                            usage=gen.usage,
                            feedback="unparsed: neither (A) nor (B) among the top logprobs")
        return Critique(steps, None, "correct" if p >= 0.5 else "incorrect",
                        f"P(True) = {p:.3f}", score=p, raw=gen.text, critic=self.name,
                        usage=gen.usage)
