"""Premise critique (PCBench: Li et al. 2025, "Don't Take the Premise for Granted: Evaluating
the Premise Critique Ability of Large Language Models"): does the QUESTION itself have a flawed
premise (a contradiction between givens, an impossible or false given, missing information)?

Two modes, as PCBench evaluates them:

- ``hint=True`` (``premise_hint.txt``): the model is told to check the premises first and
  answers ``Premise: valid|flawed`` / ``Flaw type: contradiction|impossible|missing|none`` /
  ``Explanation: ...`` / ``Verdict: correct|incorrect`` (the solution's, when the premises
  hold). Without a readable ``Premise:`` (or flaw type) line the output is unparsed.
- ``hint=False`` (``premise.txt``): the model is only asked to evaluate the solution
  (``Evaluation: ...`` / ``Verdict: ...``); a premise problem counts as found when the model
  flags one spontaneously: an explicit ``Premise: flawed`` line, or a phrase such as
  "contradictory", "impossible", "not enough information", "flawed premise" that is not
  negated ("there is no contradiction") and sits in a sentence about the question. This
  detection is a heuristic, kept deliberately narrow: "step 2 contradicts the problem" (a
  wrong step) is not a premise flag. PCBench itself grades this mode with an LLM judge.

The :class:`Critique`: when the premise is flawed, ``verdict="incorrect"``, ``score=0.0`` and
``first_error=None`` (the flaw is in the question, not in a step of the solution); otherwise
``score=1.0`` and the verdict is the model's verdict on the solution (``None`` if it gave
none). The feedback's first line is ``flaw: TYPE`` (``contradiction``, ``impossible``,
``missing``, ``unspecified`` or ``none``), then the explanation. Steps are all "unknown".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from criticlab.critics.deliberate import label_re, verdict_word
from criticlab.critics.parsing import STRING, VERDICT_ENUM, fit, obj
from criticlab.critics.template import TemplateCritic
from criticlab.models.base import GenerateConfig, LanguageModel
from criticlab.types import Critique, Overall, Problem, Solution, StepVerdict

FLAW_TYPES = ("contradiction", "impossible", "missing")

_PREMISE = label_re(r"premises?")
_FLAW_TYPE = label_re(r"flaw(?:\s+type)?", r"type\s+of\s+flaw")
_EXPLANATION = label_re(r"explanation", r"evaluation", r"reason(?:ing)?")
_VERDICT_LINE = label_re(r"(?:final\s+|overall\s+)?verdict")
_FLAWED = re.compile(r"\b(flawed|invalid|faulty|false|problematic|inconsistent|"
                     r"contradictory|incomplete|ill[-\s]posed|not\s+valid)\b", re.IGNORECASE)
_VALID = re.compile(r"\b(valid|sound|ok|fine|correct|consistent|no\s+flaw)\b",
                    re.IGNORECASE)
_TYPE_WORDS = {
    "contradiction": r"contradict\w*|inconsisten\w*|conflict\w*",
    "impossible": r"impossib\w*|infeasib\w*|false|unrealistic|absurd|invalid",
    "missing": r"missing|insufficient|incomplete|underspecified|under-specified|lack\w*",
}
_NONE = re.compile(r"^[\s*_\[(\"']*(none|no\b|n/?a\b|-\s*$)", re.IGNORECASE)

# Spontaneous flags in free text (hint=False), by flaw type. A cue counts only in a sentence
# about the question ("the problem", "the givens", ...) and not negated; "X contradicts Y"
# alone is not a cue, since critiques say "step 2 contradicts the problem" of a wrong step.
_CUES = {
    "contradiction": r"contradiction|contradictions|contradictory|"
                     r"contradicts? (?:each other|one another|itself)|inconsistent|"
                     r"inconsistency|inconsistencies|conflicting",
    "impossible": r"impossible|not possible|cannot (?:exist|happen|be true)|"
                  r"can't (?:exist|happen|be true)|false premises?|"
                  r"premises? (?:is|are|seems?|appears?) (?:to be )?false",
    "missing": r"missing information|information is missing|not enough information|"
               r"insufficient information|(?:is|are) not (?:given|provided|specified|stated)|"
               r"cannot be determined|can't be determined|underdetermined|under-specified",
    "unspecified": r"(?:flawed|faulty|invalid) premises?|premises? (?:is|are|seems?|appears?) "
                   r"(?:to be )?(?:flawed|faulty|invalid)|ill-posed|makes no sense|"
                   r"does not make sense|doesn't make sense",
}
_CUE = re.compile("|".join(f"(?P<{k}>\\b(?:{v})\\b)" for k, v in _CUES.items()), re.IGNORECASE)
_NEGATED = re.compile(r"\b(?:no|not|without|never|nothing|isn't|aren't|doesn't|wasn't)"
                      r"(?:\s+\w+){0,2}\s*$", re.IGNORECASE)
_ABOUT_QUESTION = re.compile(r"\b(?:problem|question|premises?|givens?|information|data|"
                             r"statement|conditions?|assumptions?)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def flaw_type(value: str) -> str:
    """A ``Flaw type:`` value as one of :data:`FLAW_TYPES`, ``none`` or ``unspecified``."""
    if _NONE.match(value):
        return "none"
    for kind, words in _TYPE_WORDS.items():
        if re.search(rf"\b(?:{words})", value, re.IGNORECASE):
            return kind
    return "unspecified"


def premise_value(value: str) -> str | None:
    """``flawed``/``valid`` from a ``Premise:`` value, else ``None``."""
    head = value.lstrip(" *_[(\"'")
    if _FLAWED.match(head) or _VALID.match(head):  # the first word decides: "valid (no false..."
        return "flawed" if _FLAWED.match(head) else "valid"
    if re.search(r"\b(?:not|no|n't)\s+(?:\w+\s+)?flaw", value, re.IGNORECASE):
        return "valid"
    return "flawed" if _FLAWED.search(value) else "valid" if _VALID.search(value) else None


def spontaneous_flaw(text: str) -> tuple[str, str] | None:
    """(flaw type, the sentence that flags it) for the first premise cue in ``text`` that is
    not negated and sits in a sentence about the question; else ``None``."""
    for sentence in _SENTENCE.finditer(text):
        s = sentence.group(0)
        if not _ABOUT_QUESTION.search(s):
            continue
        for m in _CUE.finditer(s):
            if not _NEGATED.search(s[:m.start()]):
                return str(m.lastgroup), s.strip()
    return None


def parse_premise(text: str, critic: str, *, hint: bool) -> Critique:
    """Read either mode's output (see the module docstring). Never raises."""
    premise: str | None = None
    kind: str | None = None
    verdict: Overall | None = None
    explanation: list[str] = []
    in_expl = False
    for line in text.splitlines():
        if (m := _PREMISE.match(line)) and premise is None:
            premise = premise_value(m.group(1))
            in_expl = False
        elif (m := _FLAW_TYPE.match(line)) and kind is None:
            kind, in_expl = flaw_type(m.group(1)), False
        elif (m := _VERDICT_LINE.match(line)) and verdict is None:
            verdict, in_expl = verdict_word(m.group(1)), False
        elif m := _EXPLANATION.match(line):
            explanation.append(m.group(1))
            in_expl = True
        elif in_expl and line.strip():
            explanation.append(line.strip())
    why = " ".join(x for x in explanation if x).strip()
    if premise is None and kind is not None:
        premise = "valid" if kind == "none" else "flawed"
    if premise is None and not hint:
        found = spontaneous_flaw(text)
        if found is not None:
            premise, kind = "flawed", found[0]
            why = why or found[1]
        elif verdict is not None:
            premise = "valid"
    if premise is None:
        what = "no 'Premise: valid|flawed' line" if hint else "no verdict and no premise flag"
        return Critique(raw=text, parsed=False, critic=critic, feedback=f"unparsed: {what}")
    return _judged(premise, kind, verdict, why, text, critic)


def _judged(premise: str, kind: str | None, verdict: Overall | None, why: str, text: str,
            critic: str) -> Critique:
    """The critique of a premise judgement (the rules of :func:`parse_premise`)."""
    if premise == "flawed":
        kind = kind if kind in FLAW_TYPES else "unspecified"
        return Critique((), None, "incorrect", f"flaw: {kind}\n{why}".strip(), score=0.0,
                        raw=text, critic=critic)
    return Critique((), None, verdict, f"flaw: none\n{why}".strip(), score=1.0, raw=text,
                    critic=critic)


PREMISE_NOTE = ("Your Flaw type goes in flaw_type (none when the premises are valid: it answers "
                "Premise too), your explanation and verdict in explanation and verdict.")
PREMISE_NOHINT_NOTE = "Your evaluation and verdict go in evaluation and verdict."


def premise_schema(max_tokens: int, *, hint: bool) -> dict[str, Any]:
    """The structured form of either mode's format, in its order; the explanation (or
    evaluation) bounded by :func:`~criticlab.critics.parsing.fit`. With the hint,
    ``flaw_type`` answers both ``Premise:`` and ``Flaw type:`` (``none``: valid), so that a
    reply cannot call its premises valid and name a flaw."""
    if not hint:
        return fit(obj({"evaluation": STRING, "verdict": VERDICT_ENUM}), max_tokens)
    return fit(obj({"flaw_type": {"enum": ["none", *FLAW_TYPES]},
                    "explanation": STRING, "verdict": VERDICT_ENUM}), max_tokens)


def read_premise_json(reply: Mapping[str, Any], critic: str, *, hint: bool) -> Critique:
    """Read a reply valid against :func:`premise_schema` by the rules of
    :func:`parse_premise`: with the hint, a flaw type makes the premise flawed (the verdict
    "incorrect", whatever ``verdict`` says) and ``none`` valid (the model's verdict), as a
    ``Flaw type:`` line without a ``Premise:`` line does; without the hint a premise flag in
    the evaluation (the same heuristic as the text's) makes the premise flawed."""
    if not hint:
        why = str(reply["evaluation"]).strip()
        found = spontaneous_flaw(why)
        if found is not None:
            return _judged("flawed", found[0], reply["verdict"], why, "", critic)
        return _judged("valid", None, reply["verdict"], why, "", critic)
    kind = str(reply["flaw_type"])
    return _judged("valid" if kind == "none" else "flawed", kind, reply["verdict"],
                   str(reply["explanation"]).strip(), "", critic)


class PremiseCritic(TemplateCritic):
    """Checks the question's premises before the solution (see the module docstring).
    ``name`` is ``premise`` with the hint and ``premise-nohint`` without."""

    name = "premise"
    default_template = "premise_hint.txt"

    def __init__(
        self,
        model: LanguageModel,
        *,
        hint: bool = True,
        config: GenerateConfig | None = None,
        template: str | Path | None = None,
        structured: bool = False,
    ) -> None:
        self.hint = hint
        if not hint:
            self.name = "premise-nohint"
            self.default_template = "premise.txt"
        super().__init__(model, config=config, template=template, structured=structured)

    def parse(self, text: str, problem: Problem, solution: Solution) -> Critique:
        return _with_steps(parse_premise(text, self.name, hint=self.hint), solution)

    def schema(self, problem: Problem, solution: Solution) -> dict[str, Any] | None:
        return premise_schema(self.config.max_tokens, hint=self.hint)

    def structured_note(self) -> str:
        return PREMISE_NOTE if self.hint else PREMISE_NOHINT_NOTE

    def read_json(self, reply: Mapping[str, Any], problem: Problem,
                  solution: Solution) -> Critique:
        return _with_steps(read_premise_json(reply, self.name, hint=self.hint), solution)


def _with_steps(crit: Critique, solution: Solution) -> Critique:
    """A parsed critique with one "unknown" verdict per step of ``solution``."""
    if not crit.parsed:
        return crit
    steps = tuple(StepVerdict(i, "unknown") for i in range(len(solution.steps)))
    return Critique(steps, crit.first_error, crit.verdict, crit.feedback, crit.score,
                    crit.raw, critic=crit.critic)
