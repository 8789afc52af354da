"""Error injection into GSM8K reference solutions: critique data with a known first error.

For each problem whose reference solution is known to be right, :func:`inject` writes the
untouched solution (``label`` -1) and up to ``per_problem`` erroneous copies, each with one
error of a type from :data:`ERROR_TYPES` (defined in :mod:`criticlab.label.mistakes`)
and every later calculation recomputed from the wrong value
(:mod:`criticlab.label.recompute`), so the injected error is exactly the first wrong step.
Records are ProcessBench's format plus a few fields::

    {"id", "generator", "problem", "steps", "label", "final_answer_correct", "error_type",
     "reference_answer", "final_answer", "source_id", "injection"}

``label`` is the 0-based first wrong step, -1 for the untouched solution; ``error_type``
is ``null`` there; ``injection`` says what changed (``step``: the reference step changed or
removed, ``null`` for a premise flaw; ``before``, ``after``). An erroneous record whose
final answer equals its reference answer is discarded and counted.

A reference is known to be right when every annotation's value is its expression's exact
value (or a rounding of it to the decimals written) and the exact arithmetic check
(:func:`criticlab.critics.arithmetic.check_step`) finds no wrong claim in any step; other
problems are skipped and counted. Choices are random but deterministic: each problem has
its own ``random.Random`` seeded from ``seed`` and the problem id, so a record does not
depend on which other problems are in the run or their order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from criticlab.critics.arithmetic import check_step
from criticlab.data import load_benchmark
from criticlab.errors import ConfigError, InputError
from criticlab.label.mistakes import ERROR_TYPES, Injection, Site, build, sites
from criticlab.label.trace import Trace, number, parse_trace
from criticlab.types import Example

log = logging.getLogger(__name__)

__all__ = ["ALL", "ERROR_TYPES", "InjectConfig", "InjectStats", "Injection", "TypeStats",
           "inject", "inject_example", "known_right"]

ALL = ERROR_TYPES


@dataclass(frozen=True)
class InjectConfig:
    """``data``: a GSM8K-format JSONL path or a spec of
    :func:`criticlab.data.load_benchmark` ("gsm8k", "gsm8k:train"); ``out``: a
    ``.json`` (one JSON array) or ``.jsonl`` file; ``per_problem``: erroneous records per
    problem (of different types and steps where possible); ``types``: the error types to
    use; ``limit``: the first N problems only."""

    data: str
    out: Path
    per_problem: int = 2
    seed: int = 0
    types: tuple[str, ...] = ALL
    limit: int | None = None


@dataclass(frozen=True)
class TypeStats:
    """Per error type. ``attempted``: injections made (= ``written`` + ``same_answer``);
    ``same_answer``: discarded because the final answer did not change;
    ``not_applicable``: problems where this type's turn came and it fitted nowhere."""

    attempted: int = 0
    written: int = 0
    same_answer: int = 0
    not_applicable: int = 0

    def __add__(self, other: TypeStats) -> TypeStats:
        return TypeStats(self.attempted + other.attempted, self.written + other.written,
                         self.same_answer + other.same_answer,
                         self.not_applicable + other.not_applicable)


@dataclass(frozen=True)
class InjectStats:
    """``problems``: read; ``skipped``: reference not known to be right (or no solution);
    ``correct``: untouched records written (label -1); ``input_errors``: the records of the
    data that were skipped as bad, located."""

    problems: int = 0
    skipped: int = 0
    correct: int = 0
    by_type: dict[str, TypeStats] = field(default_factory=dict)
    input_errors: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return self.correct + sum(s.written for s in self.by_type.values())


def known_right(trace: Trace) -> bool:
    """Every annotation holds exactly (or as a rounding to its written decimals), and no
    step has an arithmetic claim that :func:`check_step` finds wrong."""
    return all(a.consistent for a in trace.anns) and all(
        check_step(s, i).verdict != "incorrect" for i, s in enumerate(trace.steps))


def inject_example(example: Example, types: Sequence[str], per_problem: int, seed: int,
                   ) -> tuple[list[dict[str, Any]], dict[str, TypeStats]]:
    """The records of one GSM8K example (the untouched solution first, then up to
    ``per_problem`` erroneous ones) and this problem's counts per type; no records when the
    reference is not known to be right. Types take turns in an order drawn for the
    problem; within a type, sites on steps not used yet come first."""
    counts = {t: _Counts() for t in types}
    sol = example.solution
    final = None if sol is None else (sol.final_answer or example.problem.reference_answer)
    if sol is None or not final:
        return [], _freeze(counts)
    trace = parse_trace(sol.steps, final)
    if not known_right(trace):
        return [], _freeze(counts)
    pid = example.problem.id
    question = example.problem.question
    rng = Random(f"{seed}:{pid}")
    records = [_record(pid, "correct", question, trace.steps, -1, final, final, None)]
    order = list(types)
    rng.shuffle(order)
    pending = {t: sites(t, question, trace) for t in order}
    for t in order:
        rng.shuffle(pending[t])
    used: set[int] = set()
    active = list(order)
    made = 0
    while made < per_problem and active:
        for t in list(active):
            if made >= per_problem:
                break
            inj = _next(pending[t], used, question, trace, rng, counts[t])
            if inj is None:
                active.remove(t)
                if counts[t].attempted == 0:
                    counts[t].not_applicable += 1
                continue
            made += 1
            counts[t].written += 1
            used.add(inj.label if inj.step is None else inj.step)
            n = sum(r["error_type"] == t for r in records) + 1
            records.append(_record(pid, f"{t}-{n}", inj.question, inj.steps, inj.label,
                                   inj.final_answer, inj.reference_answer, inj))
    return records, _freeze(counts)


@dataclass
class _Counts:
    attempted: int = 0
    written: int = 0
    same_answer: int = 0
    not_applicable: int = 0


def _freeze(counts: dict[str, _Counts]) -> dict[str, TypeStats]:
    return {t: TypeStats(c.attempted, c.written, c.same_answer, c.not_applicable)
            for t, c in counts.items()}


def _next(pending: list[Site], used: set[int], question: str, trace: Trace, rng: Random,
          counts: _Counts) -> Injection | None:
    while pending:
        site = next((s for s in pending if s.step not in used), pending[0])
        pending.remove(site)
        inj = build(site, question, trace, rng)
        if inj is None:
            continue
        counts.attempted += 1
        if _same(inj.final_answer, inj.reference_answer):
            counts.same_answer += 1
            continue
        return inj
    return None


def _same(a: str, b: str) -> bool:
    try:
        return number(a) == number(b)
    except (ValueError, ZeroDivisionError):
        return a.strip() == b.strip()


def _record(pid: str, tag: str, question: str, steps: Sequence[str], label: int, final: str,
            reference: str, inj: Injection | None) -> dict[str, Any]:
    return {
        "id": f"{pid}/{tag}",
        "generator": "reference" if inj is None else "inject",
        "problem": question,
        "steps": list(steps),
        "label": label,
        "final_answer_correct": inj is None,
        "error_type": None if inj is None else inj.error_type,
        "reference_answer": reference,
        "final_answer": final,
        "source_id": pid,
        "injection": None if inj is None else {
            "step": inj.step, "before": inj.before, "after": inj.after},
    }


def inject(config: InjectConfig) -> InjectStats:
    """Inject errors into every problem of ``config.data`` and write the records to
    ``config.out`` (a JSON array for ``.json``, JSON Lines for ``.jsonl``). Raises
    ``ConfigError`` for a bad setting and ``InputError`` when no record of the data is good
    (writes nothing then); bad records among good ones are skipped and listed in the stats."""
    _check(config)
    totals = dict.fromkeys(config.types, TypeStats())
    records: list[dict[str, Any]] = []
    problems = skipped = 0
    bad: list[InputError] = []
    for ex in load_benchmark(config.data, limit=config.limit, errors=bad):
        problems += 1
        recs, counts = inject_example(ex, config.types, config.per_problem, config.seed)
        if not recs:
            skipped += 1
            log.info("skipped %s: reference not known to be right", ex.problem.id)
        records.extend(recs)
        totals = {t: totals[t] + counts[t] for t in config.types}
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    out.write_text(text, encoding="utf-8")
    correct = sum(r["label"] == -1 for r in records)
    stats = InjectStats(problems, skipped, correct, totals, [str(e) for e in bad])
    log.info("wrote %d records to %s", stats.records, out)
    return stats


def _check(config: InjectConfig) -> None:
    unknown = [t for t in config.types if t not in ERROR_TYPES]
    if unknown:
        raise ConfigError(f"unknown error type(s) {', '.join(map(repr, unknown))}: use some "
                          f"of {', '.join(ERROR_TYPES)}")
    if not config.types:
        raise ConfigError(f"no error type given: use some of {', '.join(ERROR_TYPES)}")
    if len(set(config.types)) != len(config.types):
        raise ConfigError(f"error types repeat: {', '.join(config.types)}")
    if not isinstance(config.per_problem, int) or isinstance(config.per_problem, bool) \
            or config.per_problem < 0:
        raise ConfigError(f"per_problem must be a whole number >= 0, got {config.per_problem!r}")
    if Path(config.out).suffix not in (".json", ".jsonl"):
        raise ConfigError(f"out must end in .json or .jsonl, got {str(config.out)!r}")
