"""Reading ``criticlab refine`` and ``criticlab select`` run directories for the report.

A refine run directory holds ``trajectories.jsonl`` (one ``Trajectory.to_dict()`` per line),
a select run directory ``selections.jsonl`` (one chosen answer per problem, with the sampled
solutions and votes); both have ``metrics.json`` and ``config.json`` (optional here).
Reading checks the structure and raises one :class:`~criticlab.errors.InputError` naming file,
line and field for the first bad value.

Whether an answer is right is judged against the problem's reference answer the way the jobs
judge it (:func:`~criticlab.grading.same_answer`); the report needs it per item (which
trajectories were fixed, which selections were right), not only the totals in metrics.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from criticlab.errors import InputError
from criticlab.grading import same_answer, solution_answer
from criticlab.infer.refine import Trajectory
from criticlab.metrics import closed_loop
from criticlab.report.jsonio import (
    CONFIG,
    METRICS,
    check_critique,
    check_numbers,
    check_problem,
    check_solution,
    check_usage,
    kind,
    meta,
    need,
    need_object,
    read_json,
    read_jsonl,
    section,
)
from criticlab.types import Problem, Solution, Usage

TRAJECTORIES = "trajectories.jsonl"
SELECTIONS = "selections.jsonl"
TRANSITION_KEYS = ("c->c", "c->i", "i->c", "i->i")

_REFINE_NUMBERS = ("n", "mean_rounds_used", "tokens_per_solved", "calls_per_solved", "errors",
                   "elapsed_s")
_TRANSITION_NUMBERS = ("n", *TRANSITION_KEYS, "acc_before", "acc_after", "CL", "CS",
                       "identity_gap")
_SELECT_NUMBERS = ("n", "samples", "accuracy", "majority_accuracy", "fallbacks", "errors",
                   "elapsed_s")
_USAGE_NUMBERS = ("prompt_tokens", "completion_tokens", "calls", "cached")


def is_right(answer: str | None, problem: Problem) -> bool:
    return same_answer(answer, problem.reference_answer)


def transition(right: tuple[bool, ...]) -> str:
    """``c->c``, ``c->i``, ``i->c`` or ``i->i``: the draft's correctness, then the final's."""
    if not right:
        return ""
    return f"{'c' if right[0] else 'i'}->{'c' if right[-1] else 'i'}"


def _engine(config: Mapping[str, Any], key: str) -> str:
    engines = config.get("engines")
    value = engines.get(key) if isinstance(engines, Mapping) else None
    return str(value) if value else ""


def _meta(run: RefineRun | SelectRun, key: str) -> str:
    return meta(run.metrics, run.config, key)


@dataclass(frozen=True)
class RefineRun:
    """One refine run: its trajectories in file order, metrics and config when present."""

    path: Path
    trajectories: tuple[Trajectory, ...]
    metrics: Mapping[str, Any] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def strategy(self) -> str:
        return _meta(self, "strategy") or next(
            (r.kind for t in self.trajectories for r in t.rounds[1:]), "")

    @property
    def critic(self) -> str:
        return _meta(self, "critic") or next(
            (r.critique.critic for t in self.trajectories for r in t.rounds
             if r.critique and r.critique.critic), "")

    @property
    def model(self) -> str:
        return _engine(self.config, "actor") or _engine(self.config, "model")

    @property
    def label(self) -> str:
        """``strategy · critic``, or the directory name when neither is known."""
        parts = [p for p in (self.strategy, self.critic) if p]
        return " · ".join(parts) if parts else self.path.name

    @cached_property
    def right(self) -> tuple[tuple[bool, ...], ...]:
        """Per trajectory, whether each round's solution has the reference answer."""
        return tuple(tuple(is_right(solution_answer(r.solution), t.problem) for r in t.rounds)
                     for t in self.trajectories)

    @cached_property
    def shown_metrics(self) -> Mapping[str, Any]:
        """``metrics.json``, or without one the same numbers computed from the trajectories."""
        if self.metrics is not None:
            return self.metrics
        return closed_loop(self.right, [t.usage for t in self.trajectories])


@dataclass(frozen=True)
class Choice:
    """One line of ``selections.jsonl``: the sampled solutions and the answer chosen."""

    problem: Problem
    solutions: tuple[Solution, ...]
    answer: str | None
    votes: Mapping[str, float]
    fallback: bool
    majority: str | None
    usage: Usage

    @property
    def right(self) -> bool:
        return is_right(self.answer, self.problem)


@dataclass(frozen=True)
class SelectRun:
    """One select run: its choices in file order, metrics and config when present."""

    path: Path
    choices: tuple[Choice, ...]
    metrics: Mapping[str, Any] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return _meta(self, "method")

    @property
    def critic(self) -> str:
        return str(self.config.get("critic") or "")

    @property
    def model(self) -> str:
        return _engine(self.config, "actor") or _engine(self.config, "model")

    @property
    def samples(self) -> int | None:
        n = (self.metrics or {}).get("samples", self.config.get("n"))
        if isinstance(n, int) and not isinstance(n, bool):
            return n
        return max((len(c.solutions) for c in self.choices), default=None)

    @property
    def pass_key(self) -> str:
        """The metrics key of the oracle bound, ``pass@N``."""
        keys = [k for k in (self.metrics or {}) if k.startswith("pass@")]
        return keys[0] if keys else f"pass@{self.samples or 'N'}"

    @property
    def label(self) -> str:
        parts = [p for p in (self.method, self.critic) if p]
        return " · ".join(parts) if parts else self.path.name

    @cached_property
    def shown_metrics(self) -> Mapping[str, Any]:
        """``metrics.json``, or without one the same numbers computed from the choices."""
        if self.metrics is not None:
            return self.metrics
        n = len(self.choices)
        usage = sum((c.usage for c in self.choices), Usage())

        def share(k: int) -> float:
            return 100 * k / n if n else 0.0

        return {"n": n, "method": self.method, "samples": self.samples,
                "accuracy": share(sum(c.right for c in self.choices)),
                "majority_accuracy": share(sum(is_right(c.majority, c.problem)
                                               for c in self.choices)),
                self.pass_key: share(sum(any(is_right(solution_answer(s), c.problem)
                                             for s in c.solutions) for c in self.choices)),
                "fallbacks": sum(c.fallback for c in self.choices), "usage": usage.to_dict()}


# --- reading ---------------------------------------------------------------------------------

def load_refine(root: Path) -> RefineRun:
    trajectories = tuple(read_jsonl(root / TRAJECTORIES, _trajectory, "a trajectory"))
    metrics = read_json(root / METRICS)
    if metrics is not None:
        _check_refine_metrics(metrics, str(root / METRICS))
    return RefineRun(root, trajectories, metrics, read_json(root / CONFIG) or {})


def load_select(root: Path) -> SelectRun:
    choices = tuple(read_jsonl(root / SELECTIONS, _choice, "a selection"))
    metrics = read_json(root / METRICS)
    if metrics is not None:
        _check_select_metrics(metrics, str(root / METRICS))
    return SelectRun(root, choices, metrics, read_json(root / CONFIG) or {})


def _trajectory(d: Any) -> Trajectory:
    need_object(d, "a trajectory")
    check_problem(d, "")
    rounds = need(d, "rounds", "", (list,), "a list of rounds")
    if not rounds:
        raise InputError("must hold at least the draft", field="rounds")
    for i, r in enumerate(rounds):
        at = f"rounds[{i}]"
        if not isinstance(r, dict):
            raise InputError(f"must be an object, not {kind(r)}", field=at)
        need(r, "kind", at, (str,), "a string")
        check_solution(need(r, "solution", at, (dict,), "an object"), f"{at}.solution")
        crit = need(r, "critique", at, (dict,), "an object", optional=True)
        if crit is not None:
            check_critique(crit, f"{at}.critique")
        check_usage(r, at, optional=False)
    return Trajectory.from_dict(d)


def _choice(d: Any) -> Choice:
    need_object(d, "a selection")
    check_problem(d, "")
    solutions = need(d, "solutions", "", (list,), "a list of solutions")
    for i, s in enumerate(solutions):
        if not isinstance(s, dict):
            raise InputError(f"must be an object, not {kind(s)}", field=f"solutions[{i}]")
        check_solution(s, f"solutions[{i}]")
    answer = need(d, "answer", "", (str,), "a string", optional=True)
    majority = need(d, "majority", "", (str,), "a string", optional=True)
    votes = need(d, "votes", "", (dict,), "an object", optional=True) or {}
    for key, value in votes.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"must be a number, not {kind(value)}", field=f"votes.{key}")
    fallback = need(d, "fallback", "", (bool,), "true or false", optional=True)
    check_usage(d, "")
    return Choice(Problem.from_dict(d["problem"]),
                  tuple(Solution.from_dict(s) for s in solutions), answer,
                  {str(k): float(v) for k, v in votes.items()}, bool(fallback), majority,
                  Usage.from_dict(d.get("usage") or {}))


def _check_refine_metrics(m: Mapping[str, Any], path: str) -> None:
    check_numbers(m, _REFINE_NUMBERS, path)
    acc = m.get("accuracy_by_round")
    if acc is not None and not isinstance(acc, list):
        raise InputError(f"must be a list of numbers, not {kind(acc)}", path=path,
                         field="accuracy_by_round")
    for i, v in enumerate(acc or ()):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise InputError(f"must be a number, not {kind(v)}", path=path,
                             field=f"accuracy_by_round[{i}]")
    check_numbers(section(m, "transitions", path) or {}, _TRANSITION_NUMBERS, path,
                  "transitions.")
    check_numbers(section(m, "usage", path) or {}, _USAGE_NUMBERS, path, "usage.")


def _check_select_metrics(m: Mapping[str, Any], path: str) -> None:
    check_numbers(m, (*_SELECT_NUMBERS, *(k for k in m if k.startswith("pass@"))), path)
    check_numbers(section(m, "usage", path) or {}, _USAGE_NUMBERS, path, "usage.")
