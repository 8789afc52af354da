"""The ``refine`` and ``select`` jobs: a config and a :class:`criticlab.jobs.Job` each, over a
dataset with reference answers, through the store (cached, resumable), into a run directory.

Correctness is judged against the reference answer here, after the fact; the reference is
never shown to the actor or the critic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from criticlab.critics.base import Critic
from criticlab.engines import Engines, EngineSpec
from criticlab.errors import ConfigError, InputError
from criticlab.grading import same_answer, solution_answer
from criticlab.infer.refine import (
    BestRefiner,
    GlobalRefiner,
    LocalRefiner,
    Refiner,
    Trajectory,
    refine_loop,
    solve,
)
from criticlab.infer.repair import RepairRefiner
from criticlab.infer.search import search_loop
from criticlab.infer.select import METHODS, majority_vote, select
from criticlab.jobs import Executor, Job, Work, keep_good, run_job, write_jsonl
from criticlab.metrics import closed_loop
from criticlab.models.base import GenerateConfig
from criticlab.types import Example, Problem, Solution, Usage

STRATEGIES = ("global", "local", "best", "repair", "mctsr", "mcnest")
SEARCHES = {"mctsr": "greedy", "mcnest": "uniform"}  # strategy -> search policy
EXPANSIONS = ("global", "local", "repair")


@dataclass(frozen=True)
class RefineConfig:
    KIND: ClassVar[str] = "refine"
    VARIANTS: ClassVar[tuple[str, ...]] = ()
    IDENTITY: ClassVar[tuple[str, ...]] = (
        "data", "critic", "strategy", "rounds", "draft", "budget", "expand", "engines.model",
        "engines.actor", "engines.base_url", "engines.max_tokens", "engines.structured")

    data: str
    out: Path
    critic: str = "arithmetic"
    strategy: str = "global"
    rounds: int = 2
    limit: int | None = None
    draft: str = "auto"  # "given" solutions, "solve" with the actor, or "auto": given if any
    engines: EngineSpec = field(default_factory=EngineSpec)
    budget: int = 8
    """mctsr/mcnest: model calls per problem for the search (nodes, with no model)."""
    expand: str = "global"
    """mctsr/mcnest: how a node is refined into a child (global, local or repair)."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; choose from {STRATEGIES}")
        if self.rounds < 0:
            raise ConfigError("--rounds must be at least 0")
        if self.budget < 0:
            raise ConfigError("--budget must be at least 0")
        if self.expand not in EXPANSIONS:
            raise ConfigError(f"unknown --expand {self.expand!r}; choose from {EXPANSIONS}")
        if self.draft not in ("auto", "given", "solve"):
            raise ConfigError("--draft must be auto, given or solve")


@dataclass(frozen=True)
class SelectConfig:
    KIND: ClassVar[str] = "select"
    VARIANTS: ClassVar[tuple[str, ...]] = ()
    IDENTITY: ClassVar[tuple[str, ...]] = (
        "data", "n", "method", "critic", "aggregate", "k", "temperature", "engines.model",
        "engines.actor", "engines.base_url", "engines.max_tokens", "engines.structured")

    data: str
    out: Path
    n: int = 8
    method: str = "majority"
    critic: str | None = None
    aggregate: str = "min"
    k: int = 4
    temperature: float = 0.8
    limit: int | None = None
    engines: EngineSpec = field(default_factory=EngineSpec)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; choose from {METHODS}")
        if self.n < 1:
            raise ConfigError("--n must be at least 1")
        if self.method != "majority" and not self.critic:
            raise ConfigError(f"--method {self.method} needs a --critic")


def load_problems(data: str, limit: int | None, errors: list[InputError]) -> list[Example]:
    """The problems of ``data`` that have a reference answer (refine and select measure
    against one); the others, and bad records, are appended to ``errors``."""
    from criticlab.data import load_benchmark

    examples = load_benchmark(data, limit=limit, errors=errors)
    return keep_good(examples, errors, lambda ex: None if ex.problem.reference_answer else (
        InputError(f"{ex.problem.id} has no reference answer; refine and select measure "
                   "against one", path=data, field="reference_answer")))


def is_right(problem: Problem, solution: Solution) -> bool:
    return same_answer(solution_answer(solution), problem.reference_answer)


def _refiner(config: RefineConfig, engines: Engines, critic: Critic) -> Refiner:
    cfg = GenerateConfig(max_tokens=config.engines.max_tokens)
    how = config.expand if config.strategy in SEARCHES else config.strategy
    if how == "repair":
        return RepairRefiner()
    if how == "global":
        return GlobalRefiner(engines.actor(), cfg)
    if how == "local":
        return LocalRefiner(engines.actor(), cfg)
    return BestRefiner(engines.actor(), critic, cfg)


def setting(config: RefineConfig, given_drafts: bool) -> str:
    """RealCritic's settings: ``self-critique`` when the critic's model also writes and
    refines the solutions, ``cross-critique`` when another model (or the data) did,
    ``verifier`` when the critic uses no model."""
    from criticlab.registry import uses_model

    if not uses_model(config.critic):
        return "verifier"
    e = config.engines
    return "self-critique" if (e.actor or e.model) == e.model and not given_drafts else (
        "cross-critique")


def run_refine(config: RefineConfig, progress: Callable[[int, int], None] | None = None,
               executor: Executor | None = None) -> dict[str, Any]:
    """Refine every problem's draft; writes ``trajectories.jsonl`` and ``metrics.json``
    (accuracy per round, transitions draft→final with CL/CS, cost per solved problem)."""
    return run_job(RefineJob(config), executor, progress)


class RefineJob(Job):
    def __init__(self, config: RefineConfig) -> None:
        self.config = config
        self.engines = config.engines
        self.use_given = False  # decided by load(): refine the data's solutions

    def check(self) -> None:
        from criticlab.registry import check_names

        check_names(self.config.critic, self.engines.model, structured=self.engines.structured)

    def load(self, errors: list[InputError]) -> list[Example]:
        config = self.config
        examples = load_problems(config.data, config.limit, errors)
        self.use_given = config.draft == "given" or (
            config.draft == "auto" and all(ex.solution is not None for ex in examples))
        if config.draft == "given":
            examples = keep_good(examples, errors, lambda ex: None if ex.solution else InputError(
                f"{ex.problem.id} has no solution to refine (--draft given)", path=config.data,
                field="steps"))
        return examples

    def work(self, engines: Engines) -> Work:
        config, use_given = self.config, self.use_given
        critic = engines.critic(config.critic)
        refiner = _refiner(config, engines, critic)
        solve_cfg = GenerateConfig(max_tokens=config.engines.max_tokens)

        async def run(ex: Example) -> dict[str, Any]:
            draft = ex.solution if use_given else None
            actor = None if use_given else engines.actor()
            if config.strategy in SEARCHES:
                t = await search_loop(
                    ex.problem, critic=critic, refiner=refiner, budget=config.budget,
                    policy=SEARCHES[config.strategy], draft=draft, actor=actor,
                    solve_config=solve_cfg)
            else:
                t = await refine_loop(
                    ex.problem, critic=critic, refiner=refiner, rounds=config.rounds,
                    draft=draft, actor=actor, solve_config=solve_cfg)
            return t.to_dict()

        return run

    def finish(self, items: Sequence[Example], done: Mapping[str, dict[str, Any]],
               failed: Mapping[str, str]) -> dict[str, Any]:
        config = self.config
        trajs = [Trajectory.from_dict(done[ex.problem.id]) for ex in items
                 if ex.problem.id in done]
        correct = [[is_right(t.problem, r.solution) for r in t.rounds] for t in trajs]
        metrics = closed_loop(correct, [t.usage for t in trajs])
        metrics.update({"strategy": config.strategy, "critic": config.critic,
                        "setting": setting(config, self.use_given),
                        # RealCritic's closed-loop score: accuracy of the corrected answers
                        "realcritic_score": metrics["transitions"]["acc_after"]})
        write_jsonl(config.out / "trajectories.jsonl", (t.to_dict() for t in trajs))
        return metrics


def run_select(config: SelectConfig, progress: Callable[[int, int], None] | None = None,
               executor: Executor | None = None) -> dict[str, Any]:
    """Sample ``n`` solutions per problem with the actor and choose one by ``method``;
    writes ``selections.jsonl`` and ``metrics.json``: the method's accuracy next to plain
    majority voting and pass@n (an oracle bound: some sample is right)."""
    return run_job(SelectJob(config), executor, progress)


class SelectJob(Job):
    def __init__(self, config: SelectConfig) -> None:
        self.config = config
        self.engines = config.engines

    def check(self) -> None:
        from criticlab.registry import check_model_spec, check_names

        e = self.engines
        check_model_spec(e.actor or e.model)
        if self.config.critic:
            check_names(self.config.critic, e.model, structured=e.structured)

    def load(self, errors: list[InputError]) -> list[Example]:
        return load_problems(self.config.data, self.config.limit, errors)

    def work(self, engines: Engines) -> Work:
        config = self.config
        critic = engines.critic(config.critic) if config.critic else None
        sample_cfg = GenerateConfig(n=config.n, temperature=config.temperature, top_p=0.95,
                                    max_tokens=config.engines.max_tokens)

        async def run(ex: Example) -> dict[str, Any]:
            sols = await solve(engines.actor(), ex.problem, sample_cfg)
            solutions = [s for s, _ in sols]
            chosen = await select(ex.problem, solutions, config.method, critic,
                                  aggregate=config.aggregate, k=config.k)
            usage = sum((u for _, u in sols), Usage())
            return {"problem": ex.problem.to_dict(),
                    "solutions": [s.to_dict() for s in solutions],
                    "answer": chosen.answer, "votes": chosen.votes,
                    "fallback": chosen.fallback,
                    "majority": majority_vote(solutions).answer, "usage": usage.to_dict()}

        return run

    def finish(self, items: Sequence[Example], done: Mapping[str, dict[str, Any]],
               failed: Mapping[str, str]) -> dict[str, Any]:
        config = self.config
        rows = [done[ex.problem.id] for ex in items if ex.problem.id in done]
        n = len(rows) or 1
        ref = [r["problem"]["reference_answer"] for r in rows]
        right = [same_answer(r["answer"], a) for r, a in zip(rows, ref, strict=True)]
        maj = [same_answer(r["majority"], a) for r, a in zip(rows, ref, strict=True)]
        any_right = [any(is_right(Problem.from_dict(r["problem"]), Solution.from_dict(s))
                         for s in r["solutions"]) for r in rows]
        usage = sum((Usage.from_dict(r["usage"]) for r in rows), Usage())
        write_jsonl(config.out / "selections.jsonl", rows)
        return {"n": len(rows), "method": config.method, "samples": config.n,
                "accuracy": 100 * sum(right) / n, "majority_accuracy": 100 * sum(maj) / n,
                f"pass@{config.n}": 100 * sum(any_right) / n,
                "fallbacks": sum(1 for r in rows if r["fallback"]), "usage": usage.to_dict()}
