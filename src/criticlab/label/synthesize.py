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
from criticlab.engines import Engines, EngineSpec
from criticlab.errors import ConfigError, InputError
from criticlab.jobs import Executor, Job, Work, keep_good, run_job, write_jsonl
from criticlab.label.export import gold_first_error
from criticlab.metrics import critique_prediction
from criticlab.types import Critique, Example


@dataclass(frozen=True)
class SynthConfig:
    KIND: ClassVar[str] = "label-synth"
    VARIANTS: ClassVar[tuple[str, ...]] = ()
    IDENTITY: ClassVar[tuple[str, ...]] = (
        "data", "critic", "samples", "temperature", "engines.model", "engines.base_url",
        "engines.max_tokens", "engines.structured")

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


def label_synth(config: SynthConfig, progress: Callable[[int, int], None] | None = None,
                executor: Executor | None = None) -> dict[str, Any]:
    """Sample teacher critiques for every labelled example and keep the agreeing ones."""
    return run_job(SynthJob(config), executor, progress)


class SynthJob(Job):
    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.engines = config.engines

    def check(self) -> None:
        from criticlab.registry import check_names

        check_names(self.config.critic, self.engines.model, structured=self.engines.structured)

    def load(self, errors: list[InputError]) -> list[Example]:
        from criticlab.data import load_benchmark

        c = self.config
        return keep_good(
            load_benchmark(c.data, limit=c.limit, errors=errors), errors,
            lambda ex: None if ex.gold is not None and ex.solution is not None else InputError(
                f"{ex.problem.id} has no solution or no label", path=c.data, field="label"))

    def work(self, engines: Engines) -> Work:
        c = self.config
        critic = engines.critic(c.critic)
        if not isinstance(critic, SamplingCritic):
            raise ConfigError(f"critic {c.critic!r} cannot sample critiques")

        async def run(ex: Example) -> dict[str, Any]:
            assert ex.solution is not None
            crits = await critic.sample(ex.problem, ex.solution, c.samples,
                                        temperature=c.temperature)  # type: ignore[call-arg]
            return {"example": ex.to_dict(), "critiques": [x.to_dict() for x in crits],
                    "kept": kept(crits, gold_first_error(ex))}

        return run

    def finish(self, items: Sequence[Example], done: Mapping[str, dict[str, Any]],
               failed: Mapping[str, str]) -> dict[str, Any]:
        rows = [done[ex.problem.id] for ex in items if ex.problem.id in done]
        write_jsonl(self.config.out / "critiques.jsonl", rows)
        total = sum(len(r["critiques"]) for r in rows)
        n_kept = sum(len(r["kept"]) for r in rows)
        return {"n": len(rows), "samples": self.config.samples, "critiques": total,
                "kept": n_kept, "keep_rate": n_kept / total if total else 0.0,
                "items_with_a_kept_critique": sum(1 for r in rows if r["kept"]),
                "unparsed": sum(1 for r in rows for c in r["critiques"] if not c["parsed"])}


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
