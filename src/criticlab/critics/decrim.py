"""Constraint critique (DeCRIM: Ferraz et al. 2024, "LLM Self-Correction with DeCRIM: Decompose,
Critique, and Refine for Enhanced Following of Instructions with Multiple Constraints"):
decompose an instruction into constraints, check each one (deterministically where
:mod:`criticlab.critics.constraints` has a checker, by an LM otherwise), and refine an answer
only when a constraint fails. Prompts are filled by :func:`~criticlab.critics.template.fill`.

- :func:`constraints_from_instruction` (:mod:`criticlab.critics.constraint_patterns`, re-exported
  here) finds the common verifiable constraints with patterns, no model needed.
- :class:`ConstraintCritic` adds an LM decomposition (``decompose.txt``) for the rest and asks
  the LM a yes/no question per non-verifiable constraint (``check_constraint.txt``). A check
  the LM answers unreadably is "unknown", never "passed".
- :func:`refine_on_failures` rewrites the answer (``refine_constraints.txt``) only when some
  constraint failed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources

from criticlab.critics.constraint_patterns import constraints_from_instruction
from criticlab.critics.constraints import LM_KIND, Constraint, check
from criticlab.critics.template import fill
from criticlab.models.base import GenerateConfig, LanguageModel, Message
from criticlab.types import Critique, Overall, Problem, Solution, StepVerdict, Usage, Verdict

log = logging.getLogger(__name__)

_FLAGS = re.IGNORECASE

# A decomposition line's tag names the kinds it may restate: a line whose kind was already
# found in the instruction itself is dropped, the patterns are authoritative.
_TAG_KINDS = {
    "words": ("length_constraints:number_words",),
    "sentences": ("length_constraints:number_sentences",),
    "paragraphs": ("length_constraints:number_paragraphs",
                   "length_constraints:nth_paragraph_first_word"),
    "include": ("keywords:existence", "keywords:frequency"),
    "exclude": ("keywords:forbidden_words",),
    "lowercase": ("change_case:english_lowercase",),
    "uppercase": ("change_case:english_capital", "change_case:capital_word_frequency"),
    "json": ("detectable_format:json_format",),
    "bullets": ("detectable_format:number_bullet_lists", "detectable_format:numbered_list"),
    "title": ("detectable_format:title",),
    "highlights": ("detectable_format:number_highlighted_sections",),
    "ending": ("startend:end_checker", "detectable_content:postscript"),
    "starting": ("startend:start_checker",),
    "quotes": ("startend:quotation",),
    "commas": ("punctuation:no_comma",),
    "placeholders": ("detectable_content:number_placeholders",),
    "postscript": ("detectable_content:postscript",),
    "language": ("language:response_language",),
}
_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*(?:\[([^\]\n]{1,60})\]|\(([\w :-]{1,60})\))?"
                   r"\s*(.+?)\s*$")
MAX_CONSTRAINTS = 20


def parse_decomposition(text: str) -> list[tuple[str, str]]:
    """(tag, constraint text) per line of a decomposition: ``- [tag] text`` (the tag may be
    missing or in parentheses, ``1.`` numbering works) or a JSON object per line with
    ``kind``/``tag`` and ``text``/``constraint``. Stops where the model starts a new
    "Instruction:". Never raises; an unreadable text gives ``[]``."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        if re.match(r"\s*(?:instruction|response)\s*:", line, _FLAGS):
            break
        stripped = line.strip().rstrip(",")
        if stripped.startswith("{"):
            try:
                obj = json.loads(stripped)
            except ValueError:
                continue
            if isinstance(obj, dict):
                body = obj.get("text") or obj.get("constraint")
                if isinstance(body, str) and body.strip():
                    out.append((str(obj.get("kind") or obj.get("tag") or ""), body.strip()))
            continue
        m = _LINE.match(line)
        if m and re.search(r"\w", m.group(3)):
            out.append(((m.group(1) or m.group(2) or "").strip().lower(), m.group(3)))
    return out[:MAX_CONSTRAINTS]


def merge_decomposition(found: Sequence[Constraint], lines: Sequence[tuple[str, str]]
                        ) -> list[Constraint]:
    """The pattern constraints, plus what the LM's lines add: a line whose text the patterns
    read becomes that verifiable constraint; any other line becomes an LM-checked one, unless
    its tag names a kind already found (a restatement)."""
    out = list(found)
    kinds = {c.kind for c in found}
    for tag, body in lines:
        parsed = constraints_from_instruction(body)
        new = [c for c in parsed if c.verifiable and c.kind not in kinds]
        if parsed and not new and all(c.kind in kinds for c in parsed):
            continue
        if new:
            out += [c for c in new if c not in out]
            continue
        tag_kinds = _TAG_KINDS.get(tag.split(":")[0].strip(), ())
        if any(k in kinds for k in tag_kinds) or tag in kinds:
            continue
        c = Constraint(LM_KIND, {"tag": tag} if tag else {}, body)
        if all(c.text.lower() != o.text.lower() for o in out):
            out.append(c)
    return out


_ANSWER = re.compile(r"(?:answer|verdict|judg(?:e)?ment|satisfied|decision)\**\s*[:=-]\s*\**\s*"
                     r"(yes|no)\b", _FLAGS)
_REASON = re.compile(r"reason\w*\**\s*[:=-]\s*\**\s*(.+)", _FLAGS)


def parse_check(text: str) -> tuple[Verdict, str]:
    """An LM check's verdict: "Answer: yes" -> correct, "no" -> incorrect (a bare leading
    yes/no also counts); anything else -> "unknown", never "correct"."""
    m = _ANSWER.search(text) or re.match(r"^[\s*_#>\"']*(yes|no)\b", text, _FLAGS)
    if not m:
        return "unknown", "unparsed LM check: " + (text.strip()[:200] or "(empty)")
    verdict: Verdict = "correct" if m.group(1).lower() == "yes" else "incorrect"
    reason = _REASON.search(text)
    why = reason.group(1) if reason else text[m.end():].strip(" .,;:-*\n")
    return verdict, why.strip().splitlines()[0] if why.strip() else ""


def load_prompt(name: str) -> str:
    return resources.files("criticlab.prompts").joinpath(name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Decomposition:
    constraints: tuple[Constraint, ...]
    raw: str = ""
    parsed: bool = True
    usage: Usage = field(default_factory=Usage)


CHECK_MAX_TOKENS = 160


class ConstraintCritic:
    """DeCRIM as a critic. ``problem.question`` is the instruction; the answer is the
    solution's steps joined by blank lines. Each constraint is one ``StepVerdict`` (index =
    constraint index); ``first_error`` is the first failed constraint, ``feedback`` lists the
    failed ones, ``score`` is the share passed. Without a model only the pattern extraction
    and the deterministic checkers run; constraints that need an LM are then "unknown"."""

    name = "constraints"

    def __init__(self, model: LanguageModel | None = None, *, decompose: bool = True,
                 config: GenerateConfig | None = None) -> None:
        self.model = model
        self.decompose_with_model = decompose and model is not None
        self.config = config or GenerateConfig(temperature=0.0, max_tokens=512)
        self.decompose_template = load_prompt("decompose.txt")
        self.check_template = load_prompt("check_constraint.txt")

    async def decompose(self, instruction: str) -> Decomposition:
        """The instruction's constraints: patterns first, then the LM's additions."""
        found = constraints_from_instruction(instruction)
        if not self.decompose_with_model or self.model is None:
            return Decomposition(tuple(found))
        body = fill(self.decompose_template, instruction=instruction)
        gen = (await self.model.generate([Message("user", body)], replace(self.config, n=1)))[0]
        # A line copied from the prompt's worked example is not a constraint of this one.
        lines = [(tag, body) for tag, body in parse_decomposition(gen.text)
                 if body not in self.decompose_template or body in instruction]
        if not lines:
            log.info("unreadable constraint decomposition: %r", gen.text[:200])
        merged = merge_decomposition(found, lines)
        return Decomposition(tuple(merged), gen.text, bool(lines), gen.usage)

    async def check(self, instruction: str, answer: str, index: int, c: Constraint
                    ) -> tuple[StepVerdict, str, Usage]:
        """One constraint's verdict, the LM's raw text (``""`` when none) and its usage."""
        what = c.text.rstrip(". ")
        if c.verifiable:
            try:
                ok, why = check(c, answer)
            except ValueError as e:
                return StepVerdict(index, "unknown", f"{what}: {e}"), "", Usage()
            return (StepVerdict(index, "correct" if ok else "incorrect", f"{what}: {why}",
                                1.0 if ok else 0.0), "", Usage())
        if self.model is None:
            return StepVerdict(index, "unknown", f"{what}: needs an LM check, no model"), "", \
                Usage()
        body = fill(self.check_template, instruction=instruction, answer=answer,
                    constraint=c.text)
        config = replace(self.config, n=1, max_tokens=min(self.config.max_tokens,
                                                          CHECK_MAX_TOKENS))
        gen = (await self.model.generate([Message("user", body)], config))[0]
        verdict, why = parse_check(gen.text)
        score = None if verdict == "unknown" else float(verdict == "correct")
        why = why or ("yes" if verdict == "correct" else "no")
        return StepVerdict(index, verdict, f"{what}: LM: {why}", score), \
            gen.text, gen.usage

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        instruction, answer = problem.question, "\n\n".join(solution.steps)
        dec = await self.decompose(instruction)
        results = await asyncio.gather(*(self.check(instruction, answer, i, c)
                                         for i, c in enumerate(dec.constraints)))
        steps = tuple(r[0] for r in results)
        usage = sum((r[2] for r in results), dec.usage)
        raw = "\n\n".join([f"[decomposition]\n{dec.raw}"] * bool(dec.raw) + [
            f"[check {i}]\n{r[1]}" for i, r in enumerate(results) if r[1]])
        failed = [s for s in steps if s.verdict == "incorrect"]
        unknown = [s for s in steps if s.verdict == "unknown"]
        verdict: Overall | None = "incorrect" if failed else (
            "correct" if steps and not unknown else None)
        if failed:
            feedback = "Failed constraints:\n" + "\n".join(f"- {s.explanation}" for s in failed)
        elif unknown:
            feedback = "Constraints that could not be checked:\n" + "\n".join(
                f"- {s.explanation}" for s in unknown)
        else:
            feedback = f"All {len(steps)} constraints met." if steps else "No constraints found."
        passed = sum(s.verdict == "correct" for s in steps)
        return Critique(
            steps=steps, first_error=failed[0].index if failed else None, verdict=verdict,
            feedback=feedback, score=passed / len(steps) if steps else None, raw=raw,
            parsed=bool(steps) or dec.parsed, critic=self.name, usage=usage,
        )


async def refine_on_failures(model: LanguageModel, instruction: str, answer: str,
                             critique: Critique, *, config: GenerateConfig | None = None) -> str:
    """A rewrite of ``answer`` that fixes the failed constraints, or ``answer`` unchanged (and
    no model call) when no constraint failed. An empty rewrite also keeps ``answer``."""
    failed = [s for s in critique.steps if s.verdict == "incorrect"]
    if not failed:
        return answer
    body = fill(load_prompt("refine_constraints.txt"), instruction=instruction,
                answer=answer, failed="\n".join(f"- {s.explanation}" for s in failed))
    config = config or GenerateConfig(temperature=0.0, max_tokens=1024)
    gen = (await model.generate([Message("user", body)], replace(config, n=1)))[0]
    return gen.text.strip() or answer
