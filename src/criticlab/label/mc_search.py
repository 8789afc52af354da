"""The anchored first-error searches (``label mc --method anchored`` and ``anchored-scan``):
the first error found with fewer rollouts by what is known before any rollout (the
solution's own final answer) and by stopping each probe at its first success.

Order. ``anchored`` bisects (OmegaPRM's binary search): at most ⌈log2 K⌉ probes, about half
of them bad. ``anchored-scan`` rolls the prefixes out in order until one has no success:
one bad probe and as many good ones as steps before the error, so its cost grows with the
error's position, and it names exactly per-step labelling's first zero (the first prefix
with no success, from the same rollouts) whatever the actor, where a bisection can step over
a bad prefix that one rollout happened to rescue. With the early stop a good probe costs one
or two rollouts and a bad one N, so where errors come early, as in ProcessBench, the scan is
the cheaper of the two (``benchmarks/mc_search.py``); the bisection bounds the probes on
long solutions with late errors. The scan also asks consecutive prefixes in turn, which an
engine's prefix cache reuses best.

Anchor. The solution's own final answer is checked against the reference first
(:func:`criticlab.grading.same_answer`), and that fixes one end of the search:

- a **wrong** final answer means the whole solution is known bad (a completion that adds
  nothing keeps the prefix's answer), so prefix K-1 is not rolled out: the search runs over
  the prefixes ``steps[:1] .. steps[:K-1]`` (indices 0..K-2) and names the last step when
  every probed prefix can still reach the reference. A bisection needs at most ⌈log2 K⌉
  probes (the plain :func:`~criticlab.label.mc.binary_first_error` ⌈log2(K+1)⌉), none for
  K=1, and the first error is never ``None``;
- a **right** final answer gets no rollout and no first error (``None``), as in the plain
  binary search. With ``check_right`` the same search runs over prefixes 0..K-2 (prefix K-1
  holds the right answer), naming ``None`` when every one can reach the reference: a
  solution that reaches the right answer through a wrong step has prefixes that fail and
  a last one that does not, so only this can find its error;
- **no** final answer (none written, none extracted) fixes nothing: the search runs over
  every prefix (0..K-1), as the plain binary search does, and may end with ``None``.

Early stop. A prefix's hard label is 1 as soon as one rollout reaches the reference, so a
probe draws its N rollouts in chunks of 1, 1, 2, 4, ... (cumulative 1, 2, 4, 8, ..., N;
:func:`chunk_ends`) and stops after the first chunk with a success. A good prefix costs one
or two rollouts, a bad one still N, in at most ⌈log2 N⌉+1 requests. The rollouts drawn are
the first ones of the N-sample request, so the hard label is the one the full request gives
(on engines that seed sample i with seed+i, see below). A probe that stopped before N is
marked ``stopped`` (:class:`~criticlab.label.mc.StepLabel`): its ``soft`` is the fraction
of the rollouts *drawn*, which is not comparable with a per-step soft label (it stopped
because one succeeded), so the row's ``soft`` list holds ``None`` there; hits/N is a lower
bound of the N-sample fraction. A probe that drew all N (a bad prefix, or one whose only
successes came in the last chunk) has the exact soft label.

Seeds and the store. Through a :class:`~criticlab.cache.CachedModel` with a store (as
:func:`~criticlab.label.mc.label_mc` passes), chunk ``[a, b)`` is asked as the same request
as the per-step and binary methods' with ``n=b``: the store answers samples 0..a-1 (drawn
by the chunks before) and the engine is asked for samples a..b-1 with ``seed + a``; they are
stored under the N-sample request's keys. So all the methods share rollouts in both
directions: a search over a store that a per-step run filled makes no engine call, and a
per-step run after a search draws only the samples the search did not. Around any other
model (no store), chunk ``[a, b)`` is sent as ``n=b-a`` with ``seed + a``. On engines that
draw sample i with ``seed + i`` (llama.cpp in process, hf, llama.cpp's server through
``openai:``, which asks one sample at a time) each rollout is then drawn with the seed the
full request gives it (the same text up to the engine's numerics, which may differ between
a sample decoded alone and one decoded in a batch); on a server that samples ``n`` from one
seed (vLLM) they are other draws of the same distribution. Either way the store keeps what
was drawn, and every method reads it back from there.

Cost. The counts here are rollouts (completions drawn). An early-stopping probe sends up to
⌈log2 N⌉+1 requests where the other methods send one, so on an engine that decodes a
request's samples together the wall time falls by less than the rollouts do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from criticlab.cache import CachedModel
from criticlab.grading import same_answer
from criticlab.infer.refine import to_solution
from criticlab.label.mc import StepLabel, _reference, continue_prompt, rollout
from criticlab.models.base import GenerateConfig, Generation, LanguageModel, Message
from criticlab.types import Problem, Usage

__all__ = ["ORDERS", "anchored_first_error", "bisect_first_error", "chunk_ends", "draw",
           "probe", "scan_first_error"]

ORDERS = ("bisect", "scan")
"""The order of the probes: ``anchored`` bisects, ``anchored-scan`` scans."""


def chunk_ends(n: int) -> list[int]:
    """The cumulative rollouts after each chunk of an early-stopping probe of ``n``:
    1, 2, 4, ... doubling, then ``n`` (chunks of 1, 1, 2, 4, ...)."""
    ends, k = [], 1
    while k < n:
        ends.append(k)
        k *= 2
    return [*ends, n]


async def draw(model: LanguageModel, messages: Sequence[Message], config: GenerateConfig,
               start: int, stop: int) -> list[Generation]:
    """Samples ``start..stop-1`` of the request ``(messages, config)``: through a store
    (a :class:`CachedModel` with one) the first ``stop`` samples of it, the earlier ones
    read back; else ``n=stop-start`` samples from ``seed + start``."""
    if isinstance(model, CachedModel) and model.store is not None:
        return (await model.generate(messages, replace(config, n=stop)))[start:stop]
    seed = None if config.seed is None else config.seed + start
    return await model.generate(messages, replace(config, n=stop - start, seed=seed))


async def probe(model: LanguageModel, problem: Problem, steps: Sequence[str], index: int,
                n: int, config: GenerateConfig, *, early_stop: bool = True) -> StepLabel:
    """The label of prefix ``steps[:index+1]`` from up to ``n`` rollouts. With
    ``early_stop`` they are drawn in chunks (:func:`chunk_ends`) until one reaches the
    reference: ``stopped`` when fewer than ``n`` were drawn. Without it, one request of ``n``
    (:func:`~criticlab.label.mc.rollout`, the same request as the other methods)."""
    if not early_stop:
        return await rollout(model, problem, steps, index, n, config)
    ref = _reference(problem)
    prefix = tuple(steps[: index + 1])
    messages = [Message("user", continue_prompt(problem.question, prefix))]
    answers: list[str | None] = []
    hits = 0
    usage = Usage()
    for stop in chunk_ends(n):
        gens = await draw(model, messages, config, len(answers), stop)
        new = [to_solution(g.text, prefix).final_answer for g in gens]
        answers += new
        hits += sum(same_answer(a, ref) for a in new)
        usage = sum((g.usage for g in gens), usage)
        if hits:
            break
    return StepLabel(index, int(hits > 0), hits / len(answers), tuple(answers), usage,
                     stopped=len(answers) < n)


async def bisect_first_error(model: LanguageModel, problem: Problem, steps: Sequence[str],
                             hi: int, n: int, config: GenerateConfig, *,
                             early_stop: bool = True) -> tuple[int, list[StepLabel]]:
    """The binary search over the prefixes ``0..hi-1``: ``(the first of them that no
    rollout takes to the reference, or hi if every probe had one; the probes in the order
    asked)``. At most ⌈log2(hi+1)⌉ probes; it assumes good prefixes come first."""
    lo = 0
    probes: list[StepLabel] = []
    while lo < hi:
        mid = (lo + hi) // 2
        lab = await probe(model, problem, steps, mid, n, config, early_stop=early_stop)
        probes.append(lab)
        if lab.hard:
            lo = mid + 1
        else:
            hi = mid
    return lo, probes


async def scan_first_error(model: LanguageModel, problem: Problem, steps: Sequence[str],
                           hi: int, n: int, config: GenerateConfig, *,
                           early_stop: bool = True) -> tuple[int, list[StepLabel]]:
    """The prefixes ``0..hi-1`` in order until one has no success: ``(its index, or hi if
    every one had one; the probes)``: per-step labelling's first zero over them."""
    probes: list[StepLabel] = []
    for i in range(hi):
        lab = await probe(model, problem, steps, i, n, config, early_stop=early_stop)
        probes.append(lab)
        if not lab.hard:
            return i, probes
    return hi, probes


async def anchored_first_error(model: LanguageModel, problem: Problem, steps: Sequence[str],
                               n: int, config: GenerateConfig, *, answer_right: bool | None,
                               check_right: bool = False, order: str = "bisect",
                               early_stop: bool = True) -> tuple[int | None, list[StepLabel]]:
    """The first error of a solution whose own final answer is known to be right
    (``answer_right=True``), wrong (``False``) or not written (``None``), and the probed
    prefixes' labels in the order asked, probing in ``order`` (:data:`ORDERS`; see the
    module's docstring)."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose from {', '.join(ORDERS)}")
    search = bisect_first_error if order == "bisect" else scan_first_error
    k = len(steps)
    if answer_right and not check_right:
        return None, []
    hi = k if answer_right is None else k - 1  # a written answer: the last prefix is known
    end, probes = await search(model, problem, steps, hi, n, config, early_stop=early_stop)
    if end < hi:
        return end, probes
    return (k - 1 if answer_right is False else None), probes
