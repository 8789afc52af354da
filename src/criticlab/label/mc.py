"""Monte Carlo step labels (Math-Shepherd) and the binary search for the first error
(OmegaPRM): an actor model completes a solution from each prefix, and each completion's final
answer is checked against the reference answer.

A *rollout* of prefix ``i`` is one completion of the solution from ``steps[:i+1]``; its final
answer is compared with the reference by :func:`criticlab.grading.same_answer`. The
prefix's hard label is 1 when some rollout reaches the reference, its soft label is the
fraction that do (:class:`StepLabel`).

- :func:`rollout_labels` labels every step: N completions per step, N·K for K steps. The
  estimated first error is the first step whose hard label is 0 (:func:`first_zero`).
- :func:`binary_first_error` binary-searches the prefix length of a solution whose final
  answer is wrong: if some rollout from ``steps[:m+1]`` is right, the first error comes after
  step m, else at or before it. About N·⌈log2 K⌉ completions. It assumes that good prefixes
  come first (a prefix whose rollouts all fail is not followed by one that succeeds); where
  the per-step labels break that, the two may name different steps.
- :func:`criticlab.label.mc_search.anchored_first_error` (``method="anchored"`` and
  ``"anchored-scan"``) is that search anchored on what the solution's own final answer
  tells: a wrong one fixes the last step as bad (steps 0..K-2 are searched; ⌈log2 K⌉ probes
  when bisecting), a right one needs no search unless asked (``check_right``); each probe
  stops at its first success (good prefixes cost one or two rollouts, bad ones N).
  ``anchored`` bisects; ``anchored-scan`` probes the prefixes in order and names per-step
  labelling's first zero exactly. See :mod:`criticlab.label.mc_search`.

Prefix reuse. The prompt is ONE user message (``prompts/continue.txt``): the instruction and
the problem first, then the steps so far as ``Step 1: …`` lines, then a fixed short tail
asking to continue and end with "The answer is X.". So the prompt of prefix i+1 extends the
prompt of prefix i textually up to the tail, and the N rollouts of one prefix are ONE request
with ``n=N`` and one text. An engine with a prefix cache evaluates the shared part once:
llama.cpp in-process keeps the tokens of the request before and evaluates only what differs
(between the N samples of a request, and between consecutive prefixes of one solution, which
both functions ask in turn, never concurrently); an OpenAI-compatible server with prefix
caching (vLLM's automatic prefix caching, SGLang's radix cache, llama.cpp server's prompt
cache) does the same across requests. With an in-process model, ``concurrency`` > 1 in
:func:`label_mc` interleaves the requests of different solutions, which keeps the reuse
between the N samples of a request but loses it between consecutive prefixes; use 1 there.

Caching. Every request goes through the model the caller passes (a
:class:`~criticlab.cache.CachedModel` in :func:`label_mc`), so rollouts are stored and a
crashed run resumes. For prefix i both functions send exactly the same request (messages,
``n``, sampling parameters, seed), so the per-step labelling and the binary search share
rollouts: a binary search over a store that a per-step run filled makes no engine call. The
anchored search asks the first samples of that same request, so it shares them too.

The reference answer is an oracle used to label, never shown to the actor.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from criticlab.critics.prompted import fill, load_template
from criticlab.engines import Engines, EngineSpec
from criticlab.errors import ConfigError, InputError
from criticlab.grading import same_answer, solution_answer
from criticlab.infer.refine import to_solution
from criticlab.jobs import Executor, Job, Work, keep_good, run_job, write_jsonl
from criticlab.models.base import GenerateConfig, LanguageModel, Message
from criticlab.steps import render_numbered
from criticlab.types import Example, Problem, Usage

log = logging.getLogger(__name__)

__all__ = ["METHODS", "MCConfig", "StepLabel", "binary_first_error", "continue_prompt",
           "first_zero", "label_example", "label_mc", "rollout", "rollout_labels",
           "template_parts"]

METHODS = ("per-step", "binary", "anchored", "anchored-scan")
TEMPLATE = "continue.txt"


@dataclass(frozen=True)
class StepLabel:
    """The rollouts of the prefix ``steps[:index+1]``: ``hard`` is 1 when some rollout
    reaches the reference answer, ``soft`` the fraction that do; ``answers`` holds each
    rollout's final answer (``None`` where it wrote none) and ``usage`` their tokens.
    ``stopped``: the probe stopped at its first success before drawing all N rollouts (the
    anchored search), so ``soft`` is the fraction of those drawn, not an estimate of the
    prefix's success rate (hits/N is a lower bound of the N-sample one)."""

    index: int
    hard: int
    soft: float
    answers: tuple[str | None, ...] = ()
    usage: Usage = field(default_factory=Usage)
    stopped: bool = False

    @property
    def rollouts(self) -> int:
        return len(self.answers)

    def to_dict(self) -> dict[str, Any]:
        d = {"index": self.index, "hard": self.hard, "soft": self.soft,
             "answers": list(self.answers), "usage": self.usage.to_dict()}
        return {**d, "stopped": True} if self.stopped else d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepLabel:
        return cls(int(d["index"]), int(d["hard"]), float(d["soft"]),
                   tuple(None if a is None else str(a) for a in d.get("answers", ())),
                   Usage.from_dict(d.get("usage") or {}), bool(d.get("stopped", False)))


# -- prompts ---------------------------------------------------------------------------------
@functools.cache
def template_parts() -> tuple[str, str]:
    """The packaged template split at ``{steps}``: (head with ``{problem}``, fixed tail)."""
    text = load_template(TEMPLATE, ("{problem}", "{steps}"))
    head, _, tail = text.partition("{steps}")
    if "{problem}" not in head or "{steps}" in tail:
        raise ConfigError(f"{TEMPLATE}: {{problem}} must come once, before {{steps}}")
    return head, tail


def continue_prompt(question: str, prefix: Sequence[str]) -> str:
    """The prompt asking to continue ``prefix``: the head (instruction and problem), the
    steps as ``Step k:`` lines, the fixed tail. Without its tail it is a textual prefix of
    the prompt of any longer prefix of the same solution."""
    head, tail = template_parts()
    return fill(head, problem=question) + render_numbered(prefix) + tail


# -- rollouts --------------------------------------------------------------------------------
def _reference(problem: Problem) -> str:
    if problem.reference_answer is None:
        raise ValueError(f"{problem.id}: Monte Carlo labels need a reference answer")
    return problem.reference_answer


async def rollout(model: LanguageModel, problem: Problem, steps: Sequence[str], index: int,
                  n: int, config: GenerateConfig) -> StepLabel:
    """The label of prefix ``steps[:index+1]`` from ``n`` completions, asked as one request
    (``config`` with ``n`` replaced). A completion's final answer is the one it writes, else
    the last one written in the prefix (a completion that adds nothing keeps the prefix's)."""
    ref = _reference(problem)
    prefix = tuple(steps[: index + 1])
    messages = [Message("user", continue_prompt(problem.question, prefix))]
    gens = await model.generate(messages, replace(config, n=n))
    answers = tuple(to_solution(g.text, prefix).final_answer for g in gens)
    hits = sum(same_answer(a, ref) for a in answers)
    usage = sum((g.usage for g in gens), Usage())
    return StepLabel(index, int(hits > 0), hits / len(answers) if answers else 0.0,
                     answers, usage)


async def rollout_labels(model: LanguageModel, problem: Problem, steps: Sequence[str], n: int,
                         config: GenerateConfig) -> list[StepLabel]:
    """Every step's label, from ``n`` rollouts of each prefix (N·K completions), asked in
    order of prefix length so that each prompt extends the one before (prefix reuse)."""
    return [await rollout(model, problem, steps, i, n, config) for i in range(len(steps))]


def first_zero(labels: Sequence[StepLabel]) -> int | None:
    """The estimated first error: the first step whose hard label is 0, ``None`` if none."""
    return next((lab.index for lab in sorted(labels, key=lambda x: x.index) if not lab.hard),
                None)


async def binary_first_error(model: LanguageModel, problem: Problem, steps: Sequence[str],
                             n: int, config: GenerateConfig
                             ) -> tuple[int | None, list[StepLabel]]:
    """OmegaPRM's binary search for the first error of a solution with a wrong final answer:
    ``(first error or None, the probed prefixes' labels in the order asked)``. At most
    ⌈log2(K+1)⌉ probes of ``n`` rollouts. ``None`` means every probed prefix could still
    reach the reference (the search ran off the end). It does not check the solution's own
    final answer; :func:`label_example` does."""
    lo, hi = 0, len(steps)
    probes: list[StepLabel] = []
    while lo < hi:
        mid = (lo + hi) // 2
        lab = await rollout(model, problem, steps, mid, n, config)
        probes.append(lab)
        if lab.hard:
            lo = mid + 1
        else:
            hi = mid
    return (None if lo == len(steps) else lo), probes


# -- one example -----------------------------------------------------------------------------
def _gold(ex: Example) -> tuple[bool, int | None]:
    """(whether the data has a first-error label, that label). A record whose only label
    is a wrong final answer has no first-error label."""
    g = ex.gold
    if g is None or (g.first_error is None and g.final_answer_correct is False):
        return False, None
    return True, g.first_error


async def label_example(model: LanguageModel, ex: Example, method: str, n: int,
                        config: GenerateConfig, *, check_right: bool = False
                        ) -> dict[str, Any]:
    """One row of ``labels.jsonl``: the estimated first error by ``method``, the labels of the
    prefixes rolled out (``labels`` in the order asked; ``hard``/``soft`` per step, ``None``
    where not probed, and ``soft`` ``None`` where an anchored probe stopped early), rollouts
    (those drawn) and tokens spent. The binary and anchored searches roll nothing out for a
    solution whose own final answer is right (its first error is ``None``) unless
    ``check_right`` (the anchored methods only, :mod:`criticlab.label.mc_search`)."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if ex.solution is None:
        raise ValueError(f"{ex.problem.id}: no solution to label")
    steps = ex.solution.steps
    answer = solution_answer(ex.solution)
    right = same_answer(answer, _reference(ex.problem))
    labels: list[StepLabel]
    if method == "per-step":
        labels = await rollout_labels(model, ex.problem, steps, n, config)
        first = first_zero(labels)
    elif method.startswith("anchored"):
        from criticlab.label.mc_search import anchored_first_error

        first, labels = await anchored_first_error(
            model, ex.problem, steps, n, config, answer_right=None if answer is None else right,
            check_right=check_right, order="scan" if method == "anchored-scan" else "bisect")
    elif right:
        first, labels = None, []
    else:
        first, labels = await binary_first_error(model, ex.problem, steps, n, config)
    hard: list[int | None] = [None] * len(steps)
    soft: list[float | None] = [None] * len(steps)
    for lab in labels:
        hard[lab.index], soft[lab.index] = lab.hard, None if lab.stopped else lab.soft
    has_gold, gold = _gold(ex)
    usage = sum((lab.usage for lab in labels), Usage())
    return {"id": ex.problem.id, "problem": ex.problem.question,
            "reference_answer": ex.problem.reference_answer, "steps": list(steps),
            "final_answer": answer, "answer_correct": right, "method": method,
            "first_error": first, "hard": hard, "soft": soft,
            "labels": [lab.to_dict() for lab in labels],
            "has_gold": has_gold, "gold_first_error": gold,
            "rollouts": sum(lab.rollouts for lab in labels), "usage": usage.to_dict()}


# -- the job ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class MCConfig:
    """``data``: a benchmark spec or file (:func:`criticlab.data.load_benchmark`) whose
    records have steps and a reference answer; ``actor``: the model spec that writes the
    rollouts (``base_url`` for ``openai:``); ``rollouts``: completions per prefix;
    ``method``: ``per-step`` (every step), ``binary`` (the first error only), ``anchored`` or
    ``anchored-scan`` (the first error, by a search anchored on the solution's final answer
    with early-stopping probes, bisecting or in order); ``check_right``: the anchored methods
    only, also search solutions whose final answer is right."""

    KIND: ClassVar[str] = "label-mc"
    IDENTITY: ClassVar[tuple[str, ...]] = (
        "data", "actor", "base_url", "rollouts", "temperature", "max_tokens", "seed")
    # the methods share the rollouts; check_right off is left out of the key (run_key)
    VARIANTS: ClassVar[tuple[str, ...]] = ("method", "check_right")

    data: str
    out: Path
    actor: str = "embedded"
    base_url: str | None = None
    rollouts: int = 8
    method: str = "per-step"
    temperature: float = 0.8
    max_tokens: int = 512
    limit: int | None = None
    concurrency: int = 4
    seed: int = 0
    threads: int | None = None
    check_right: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; choose from "
                              f"{', '.join(METHODS)}")
        if self.check_right and not self.method.startswith("anchored"):
            raise ConfigError("--check-right applies to --method anchored or anchored-scan "
                              "only")
        for name in ("rollouts", "max_tokens", "concurrency"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.temperature < 0:
            raise ConfigError("--temperature must be at least 0")

    def generate_config(self) -> GenerateConfig:
        """The sampling of every rollout request (``n`` is set per request)."""
        return GenerateConfig(n=self.rollouts, temperature=self.temperature, seed=self.seed,
                              max_tokens=self.max_tokens)

def label_mc(config: MCConfig, progress: Callable[[int, int], None] | None = None, *,
             model: LanguageModel | None = None,
             executor: Executor | None = None) -> dict[str, Any]:
    """Label every solution of ``config.data`` by Monte Carlo rollouts into ``config.out``:
    ``labels.jsonl`` (one row per solution, see :func:`label_example`), ``metrics.json``
    (returned), ``config.json`` and the store. ``model`` replaces the actor that
    ``config.actor`` names (it is still wrapped in the run's store; local executor only).
    Resumable: a rerun reads finished solutions back and sends no request that is stored.
    ``progress(done, total)`` is called once per solution."""
    return run_job(MCJob(config, model), executor, progress)


class MCJob(Job):
    """The label mc job: one :func:`label_example` row per solution."""

    def __init__(self, config: MCConfig, model: LanguageModel | None = None) -> None:
        self.config = config
        # concurrency 1 keeps an in-process engine's prefix reuse between consecutive prefixes
        self.engines = EngineSpec(model=config.actor, base_url=config.base_url,
                                  threads=config.threads, concurrency=config.concurrency,
                                  max_tokens=config.max_tokens)
        self.given = {} if model is None else {config.actor: model}

    def check(self) -> None:
        if not self.given:
            from criticlab.registry import check_model_spec

            check_model_spec(self.config.actor)

    def load(self, errors: list[InputError]) -> list[Example]:
        """The solutions to label: those with steps and a reference answer."""
        from criticlab.data import load_benchmark

        config = self.config

        def why(ex: Example) -> InputError | None:
            if ex.problem.reference_answer is None:
                return InputError(f"{ex.problem.id} has no reference answer (rollouts are "
                                  "checked against it)", path=config.data,
                                  field="reference_answer")
            if ex.solution is None or not ex.solution.steps:
                return InputError(f"{ex.problem.id} has no steps to label", path=config.data,
                                  field="steps")
            return None

        return keep_good(load_benchmark(config.data, limit=config.limit, errors=errors),
                         errors, why)

    def work(self, engines: Engines) -> Work:
        actor, c, gen = engines.actor(), self.config, self.config.generate_config()

        async def run(ex: Example) -> dict[str, Any]:
            return await label_example(actor, ex, c.method, c.rollouts, gen,
                                       check_right=c.check_right)

        return run

    def finish(self, items: Sequence[Example], done: Mapping[str, dict[str, Any]],
               failed: Mapping[str, str]) -> dict[str, Any]:
        from criticlab.models.spec import ModelSpec

        c = self.config
        rows = [done[ex.problem.id] for ex in items if ex.problem.id in done]
        write_jsonl(c.out / "labels.jsonl", rows)
        actor = self.given[c.actor].name if self.given else ModelSpec.parse(c.actor).name
        return {**summarize(rows), "method": c.method, "actor": actor, "rollouts": c.rollouts,
                **({"check_right": True} if c.check_right else {})}


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Metrics of ``labels.jsonl`` rows: mean rollouts (those drawn) and tokens per
    solution, rollouts also by whether the solution's own final answer is right or wrong,
    the probes that stopped at their first success (``early_stopped``), and the agreement of
    the estimated first error with the data's own label where it has one (exact match;
    ``early``/``late``: an error named before/after the gold one; ``missed``: none named
    where there is one; ``false_alarm``: one named where there is none).
    Tokens are those the engine reports per sample (llama.cpp counts a sample's whole prompt
    even where it reused it), cached samples included: the cost of the method, not of this
    run."""
    n = len(rows)
    usage = sum((Usage.from_dict(r["usage"]) for r in rows), Usage())
    gold = [(r["first_error"], r["gold_first_error"]) for r in rows if r["has_gold"]]
    both = [(e, g) for e, g in gold if e is not None and g is not None]
    return {
        "n": n,
        "first_errors": {r["id"]: r["first_error"] for r in rows},
        "found": sum(r["first_error"] is not None for r in rows),
        "agreement": 100 * sum(e == g for e, g in gold) / len(gold) if gold else None,
        "agreement_n": len(gold),
        "disagreements": {"early": sum(e < g for e, g in both),
                          "late": sum(e > g for e, g in both),
                          "missed": sum(e is None and g is not None for e, g in gold),
                          "false_alarm": sum(e is not None and g is None for e, g in gold)},
        "mean_rollouts": sum(r["rollouts"] for r in rows) / n if n else 0.0,
        "mean_rollouts_wrong": _mean([r["rollouts"] for r in rows if not r["answer_correct"]]),
        "mean_rollouts_right": _mean([r["rollouts"] for r in rows if r["answer_correct"]]),
        "early_stopped": sum(bool(x.get("stopped")) for r in rows for x in r["labels"]),
        "mean_prefixes": sum(len(r["labels"]) for r in rows) / n if n else 0.0,
        "mean_tokens": usage.total_tokens / n if n else 0.0,
        "mean_completion_tokens": usage.completion_tokens / n if n else 0.0,
        "usage": usage.to_dict(),
    }


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None
