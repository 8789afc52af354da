"""Helpers for the refine and select report tests: trajectories and selections built by hand,
written as ``criticlab refine`` / ``criticlab select`` write them, with metrics computed by
``criticlab.metrics.closed_loop`` (refine) and the select job's own formulas (select)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from criticlab.grading import same_answer, solution_answer
from criticlab.infer.jobs import is_right
from criticlab.infer.refine import Round, Trajectory
from criticlab.metrics import closed_loop
from criticlab.types import Critique, Problem, Solution, StepVerdict, Usage

XSS = "</script><script>alert(1)</script>"


def problem(ident: str, answer: str = "20", question: str = "What is 2 + 3 * 4?") -> Problem:
    return Problem(ident, question, reference_answer=answer)


def trajectory(p: Problem, right: Sequence[bool], *, kind: str = "repair",
               usage: Usage = Usage(100, 50, 1, 0), feedback: str = "Step 1 is wrong.",
               steps: Sequence[str] | None = None, accept_last: bool = True) -> Trajectory:
    """One trajectory whose round ``r`` has the reference answer iff ``right[r]``. Every round
    but the last is critiqued with a first error at step 1; the last is accepted (or flagged
    too, ``accept_last=False``: the round limit stopped it)."""
    rounds = []
    for r, ok in enumerate(right):
        answer = p.reference_answer if ok else f"{r}99"
        body = list(steps) if steps is not None else [f"round {r}: 2 + 3 = 5",
                                                      f"5 * 4 = {answer}"]
        solution = Solution((*body, f"The answer is {answer}."), answer)
        last = r == len(right) - 1
        if last and accept_last:
            critique = Critique(first_error=None, verdict="correct", feedback="Looks right.",
                                critic="arithmetic", usage=Usage(10, 5, 0, 0))
        else:
            critique = Critique(steps=(StepVerdict(1, "incorrect", "3 * 4 is 12"),),
                                first_error=1, verdict="incorrect", feedback=feedback,
                                critic="arithmetic")
        rounds.append(Round("draft" if r == 0 else kind, solution, critique, usage))
    return Trajectory(p, tuple(rounds))


def refine_metrics(trajs: Sequence[Trajectory], **extra: Any) -> dict[str, Any]:
    """What ``run_refine`` writes to metrics.json for these trajectories."""
    correct = [[is_right(t.problem, r.solution) for r in t.rounds] for t in trajs]
    m = closed_loop(correct, [t.usage for t in trajs])
    m.update({"errors": 0, "complete": True, "this_run": {"engine_calls": 0, "store_hits": 0},
              "strategy": "repair", "critic": "arithmetic", "elapsed_s": 3.5})
    m.update(extra)
    return m


def write_refine_run(path: Path, trajs: Sequence[Trajectory], *, strategy: str = "repair",
                     critic: str = "arithmetic",
                     metrics: Mapping[str, Any] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    with (path / "trajectories.jsonl").open("w", encoding="utf-8") as f:
        for t in trajs:
            f.write(json.dumps(t.to_dict(), ensure_ascii=False) + "\n")
    if metrics is None:
        metrics = refine_metrics(trajs, strategy=strategy, critic=critic)
    (path / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    config = {"data": "data.json", "out": str(path), "critic": critic, "strategy": strategy,
              "rounds": 2, "limit": None, "draft": "auto",
              "engines": {"model": "embedded", "actor": None, "base_url": None,
                          "threads": None, "timeout": 120.0, "concurrency": 4,
                          "max_tokens": 1024}}
    (path / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


# Two refine runs over the same eight problems. "repair": c→c 2, c→i 1, i→c 3, i→i 2; accuracy
# after rounds 0/1/2 = 37.5/50.0/62.5; CL 2/3, CS 3/5; 15 rounds of 150 tokens over 5 solved.
REPAIR = {"p1": [True], "p2": [True, False], "p3": [False, True], "p4": [False, False, True],
          "p5": [False], "p6": [False, False, False], "p7": [True], "p8": [False, True]}
# "global": c→c 3, c→i 0, i→c 1, i→i 4; 37.5 → 50.0; CL 1, CS 1/5; 13 rounds of 500 tokens.
GLOBAL = {"p1": [True], "p2": [True, True], "p3": [False, False], "p4": [False, True],
          "p5": [False], "p6": [False, False], "p7": [True], "p8": [False, False]}


def repair_trajectories() -> list[Trajectory]:
    out = []
    for ident, right in REPAIR.items():
        if ident == "p8":  # untrusted model text everywhere it can be
            out.append(trajectory(problem(ident, question=XSS), right, feedback=XSS,
                                  steps=[XSS, "<img src=x onerror=alert(2)>"]))
        else:
            out.append(trajectory(problem(ident), right, accept_last=ident != "p6"))
    return out


def global_trajectories() -> list[Trajectory]:
    return [trajectory(problem(i), right, kind="global", usage=Usage(300, 200, 1, 0))
            for i, right in GLOBAL.items()]


# --- select --------------------------------------------------------------------------------

def selection(p: Problem, answers: Sequence[str | None], chosen: str | None, *,
              fallback: bool = False) -> dict[str, Any]:
    """One line of selections.jsonl: samples with these final answers, majority votes."""
    solutions = [Solution((f"I think it is {a}.",), a) for a in answers]
    votes: dict[str, float] = {}
    for a in answers:
        if a is not None:
            votes[a] = votes.get(a, 0.0) + 1
    majority = max(votes, key=lambda a: votes[a]) if votes else None
    return {"problem": p.to_dict(), "solutions": [s.to_dict() for s in solutions],
            "answer": chosen, "votes": votes, "fallback": fallback, "majority": majority,
            "usage": Usage(200 * len(answers), 100 * len(answers), len(answers), 0).to_dict()}


def select_metrics(rows: Sequence[Mapping[str, Any]], method: str, n: int) -> dict[str, Any]:
    """What ``run_select`` writes to metrics.json for these rows (its formulas)."""
    k = len(rows) or 1
    ref = [r["problem"]["reference_answer"] for r in rows]
    right = [same_answer(r["answer"], a) for r, a in zip(rows, ref, strict=True)]
    maj = [same_answer(r["majority"], a) for r, a in zip(rows, ref, strict=True)]
    any_right = [any(same_answer(solution_answer(Solution.from_dict(s)), a)
                     for s in r["solutions"]) for r, a in zip(rows, ref, strict=True)]
    usage = sum((Usage.from_dict(r["usage"]) for r in rows), Usage())
    return {"n": len(rows), "method": method, "samples": n,
            "accuracy": 100 * sum(right) / k, "majority_accuracy": 100 * sum(maj) / k,
            f"pass@{n}": 100 * sum(any_right) / k,
            "fallbacks": sum(1 for r in rows if r["fallback"]), "errors": 0, "complete": True,
            "usage": usage.to_dict(), "this_run": {"engine_calls": 8, "store_hits": 0},
            "elapsed_s": 42.0}


def select_rows() -> list[dict[str, Any]]:
    """Five problems, 4 samples each: the method is right on s1, s2, s3 (s1 and s3 against a
    wrong majority) and wrong on s4 (against a right majority) and s5 (no sample right); s2
    fell back to the majority. Accuracy 60, majority 40, pass@4 80, 1 fallback; the method
    and the majority differ on s1, s3 and s4."""
    return [
        selection(problem("s1"), ["14", "20", "14", "20"], "20"),  # a tie: the first seen wins
        selection(problem("s2"), ["20", "14", "20", None], "20", fallback=True),
        selection(problem("s3"), ["14", "14", "20", "14"], "20"),
        selection(problem("s4", question=XSS), [XSS, "20", "20", XSS + "!"], XSS),
        selection(problem("s5"), ["7", "8", "7", "9"], "7"),
    ]


def write_select_run(path: Path, rows: Sequence[Mapping[str, Any]], *,
                     method: str = "filtered", critic: str | None = "arithmetic", n: int = 4,
                     metrics: Mapping[str, Any] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    with (path / "selections.jsonl").open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    m = select_metrics(rows, method, n) if metrics is None else metrics
    (path / "metrics.json").write_text(json.dumps(m, indent=2), encoding="utf-8")
    config = {"data": "data.json", "out": str(path), "n": n, "method": method, "critic": critic,
              "aggregate": "min", "k": 4, "temperature": 0.8, "limit": None,
              "engines": {"model": "embedded", "actor": None}}
    (path / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path
