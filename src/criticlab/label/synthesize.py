"""Critique synthesis with filtering (AutoMathCritique, DeepCritic): a teacher critic writes
``samples`` critiques of every labelled solution; the ones whose first error agrees with the
label are kept. The keep rate says how far the teacher can be trusted on this data.

``critiques.jsonl`` holds, per item, the example, every critique and the indices kept; it
feeds :mod:`criticlab.label.export` (SFT from kept critiques, preference pairs from kept vs
rejected).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from criticlab.critics.ensemble import SamplingCritic
from criticlab.errors import ConfigError, InputError
from criticlab.jobs import (
    Engines,
    EngineSpec,
    Ticker,
    in_run_dir,
    input_errors,
    keep_good,
    run_items,
    write_jsonl,
)
from criticlab.label.export import gold_first_error
from criticlab.metrics import critique_prediction
from criticlab.store import Store
from criticlab.types import Critique, Example


@dataclass(frozen=True)
class SynthConfig:
    KIND: ClassVar[str] = "label-synth"
    VARIANTS: ClassVar[tuple[str, ...]] = ()
    IDENTITY: ClassVar[tuple[str, ...]] = (
        "data", "critic", "samples", "temperature", "engines.model", "engines.base_url",
        "engines.max_tokens")

    data: str
    out: Path
    critic: str = "processbench"
    samples: int = 4
    temperature: float = 1.0
    limit: int | None = None
    engines: EngineSpec = field(default_factory=EngineSpec)

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ConfigError("--samples must be at least 1")


def kept(critiques: Sequence[Critique], gold: int) -> list[int]:
    """Indices of the critiques whose first error is the label (-1: no error)."""
    return [i for i, c in enumerate(critiques) if critique_prediction(c) == gold]


def label_synth(config: SynthConfig, progress: Callable[[int, int], None] | None = None
                ) -> dict[str, Any]:
    """Sample teacher critiques for every labelled example and keep the agreeing ones."""
    from criticlab.data import load_benchmark

    bad: list[InputError] = []
    examples = keep_good(
        load_benchmark(config.data, limit=config.limit, errors=bad), bad,
        lambda ex: None if ex.gold is not None and ex.solution is not None else InputError(
            f"{ex.problem.id} has no solution or no label", path=config.data, field="label"))

    async def main(store: Store, key: str) -> dict[str, Any]:
        engines = Engines(config.engines, store)
        critic = engines.critic(config.critic)
        if not isinstance(critic, SamplingCritic):
            raise ConfigError(f"critic {config.critic!r} cannot sample critiques")

        async def work(ex: Example) -> dict[str, Any]:
            assert ex.solution is not None
            crits = await critic.sample(ex.problem, ex.solution, config.samples,
                                        temperature=config.temperature)  # type: ignore[call-arg]
            return {"example": ex.to_dict(), "critiques": [c.to_dict() for c in crits],
                    "kept": kept(crits, gold_first_error(ex))}

        tick = Ticker(len(examples), progress)
        try:
            done, errors = await run_items(store, key, examples, work, config.engines, tick)
        finally:
            await engines.aclose()
        rows = [done[ex.problem.id] for ex in examples if ex.problem.id in done]
        write_jsonl(config.out / "critiques.jsonl", rows)
        total = sum(len(r["critiques"]) for r in rows)
        n_kept = sum(len(r["kept"]) for r in rows)
        return {"n": len(rows), "samples": config.samples, "critiques": total, "kept": n_kept,
                "keep_rate": n_kept / total if total else 0.0,
                "items_with_a_kept_critique": sum(1 for r in rows if r["kept"]),
                "unparsed": sum(1 for r in rows for c in r["critiques"] if not c["parsed"]),
                "errors": len(errors), "complete": len(done) == len(examples),
                "this_run": {**engines.stats(), "resumed_items": tick.resumed},
                **input_errors(bad)}

    return in_run_dir(config, main)


def read_critiques(path: Path) -> tuple[list[Example], dict[str, list[Critique]],
                                         dict[str, list[Critique]]]:
    """``critiques.jsonl`` -> (examples, all critiques by id, kept critiques by id)."""
    import json

    examples: list[Example] = []
    every: dict[str, list[Critique]] = {}
    good: dict[str, list[Critique]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path=str(path)) from None
    for n, line in enumerate(lines, start=1):
        try:
            row: Mapping[str, Any] = json.loads(line)
            ex = Example.from_dict(row["example"])
            crits = [Critique.from_dict(c) for c in row["critiques"]]
            keep = [crits[i] for i in row["kept"]]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as e:
            raise InputError(f"not a critiques.jsonl row: {e}", path=str(path), line=n) from None
        examples.append(ex)
        every[ex.problem.id] = crits
        good[ex.problem.id] = keep
    return examples, every, good
