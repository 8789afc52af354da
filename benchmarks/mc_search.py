"""Monte Carlo first-error search: rollouts per solution of per-step labelling, the binary
search and the anchored searches (``label mc --method anchored`` and ``anchored-scan``, each
also with ``--check-right``) on ProcessBench solutions, and agreement of their first errors.

Data: ProcessBench-MATH solutions with K >= 10 steps (``--min-steps``) and, for contrast, all
of ProcessBench-GSM8K (4-7 steps mostly), from ../shared/data/processbench/.

1. Simulated actor. Real rollouts of 80+ per solution are too slow here and the embedded
   model cannot label (it is at chance), so the rollouts come from a simulated actor whose
   chance of reaching the reference from a prefix follows ProcessBench's gold label:
   ``p_good`` from a prefix before the gold first error, ``p_bad`` from one at or after it;
   the last prefix of a solution whose final answer is right (it holds the answer) has
   ``p_good``. Each rollout's success is decided by a hash of (trial, solution, prefix,
   sample seed), so a sample is the same whichever method asks for it (as through the store)
   and the methods are compared on the same rollouts. Every method runs its real code
   (``label_example`` and ``criticlab.label.mc_search``) against that actor; ProcessBench
   has no reference answers, so the reference is "1" and each solution's own final answer
   is "1" where ProcessBench marks it right, else "0". Scenarios: a perfect oracle
   (p_good=1, p_bad=0) and a noisy actor (0.6/0.02 by default, ``--noisy``), over
   ``--trials`` seeds. Printed per method: rollouts per solution (all, wrong final answer,
   right final answer), prefixes probed, the ratio to per-step, the share of solutions whose
   first error equals per-step's (same rollouts), and the agreement with the gold label.
   Two ablations split the anchored search's saving into its parts: the anchor without the
   early stop, and the early stop without the anchor (the binary search with early-stopping
   probes). Target: >= 3x fewer rollouts than per-step at the same first error on MATH
   K >= 10.
2. A small real run: ``label_mc`` with the embedded model on a few GSM8K test solutions (one
   injected calculation slip each, plus one untouched) with tiny ``--max-tokens``: each
   method into a fresh store, then the anchored-scan run again (resumed: no engine call)
   and per-step in its directory (it draws only the samples the search did not). It shows
   the plumbing and the real rollout counts; the embedded model's first errors are noise.

    python benchmarks/mc_search.py [--rollouts 8] [--trials 3] [--min-steps 10]
                                   [--noisy 0.6,0.02] [--real 3] [--real-rollouts 4]
                                   [--max-tokens 24] [--threads 1]

Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from criticlab.label.mc import METHODS as MC_METHODS
from criticlab.label.mc import MCConfig, continue_prompt, label_example, label_mc
from criticlab.label.mc_search import anchored_first_error, bisect_first_error
from criticlab.models.base import GenerateConfig, Generation, Message
from criticlab.types import Example, Gold, Problem, Solution, Usage

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PROCESSBENCH = DATA / "processbench"
GSM8K = DATA / "gsm8k" / "test.jsonl"


# -- 1. the simulated actor ------------------------------------------------------------------
class SimActor:
    """Rollouts of one solution: from prefix i, sample seed s reaches the reference ("1")
    iff a hash of (trial, id, i, s) falls below that prefix's success probability."""

    name = "simulated"

    def __init__(self, ex: Example, probs: Sequence[float], trial: int) -> None:
        assert ex.solution is not None
        steps = ex.solution.steps
        self.prefix = {continue_prompt(ex.problem.question, steps[: i + 1]): i
                       for i in range(len(steps))}
        self.probs, self.key, self.samples = probs, f"{trial}:{ex.problem.id}", 0

    def hit(self, i: int, seed: int) -> bool:
        h = hashlib.blake2b(f"{self.key}:{i}:{seed}".encode(), digest_size=8).digest()
        return int.from_bytes(h) / 2**64 < self.probs[i]

    async def generate(self, messages: Sequence[Message], config: GenerateConfig
                       ) -> list[Generation]:
        i = self.prefix[messages[-1].content]
        assert config.seed is not None
        self.samples += config.n
        return [Generation(f"The answer is {1 if self.hit(i, config.seed + j) else 0}.",
                           Usage(completion_tokens=5))
                for j in range(config.n)]


def probabilities(ex: Example, p_good: float, p_bad: float) -> list[float]:
    assert ex.solution is not None and ex.gold is not None
    k = len(ex.solution.steps)
    first = k if ex.gold.first_error is None else ex.gold.first_error
    probs = [p_good if i < first else p_bad for i in range(k)]
    if ex.gold.final_answer_correct:
        probs[-1] = p_good  # the last prefix holds the right answer
    return probs


def load(subset: str, min_steps: int) -> list[Example]:
    path = PROCESSBENCH / f"{subset}.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found: this benchmark needs the shared ProcessBench data")
    out = []
    for r in json.loads(path.read_text(encoding="utf-8")):
        if len(r["steps"]) < min_steps:
            continue
        right = bool(r["final_answer_correct"])
        out.append(Example(Problem(f"{subset}-{r['id']}", r["problem"], "1"),
                           Solution(tuple(r["steps"]), final_answer="1" if right else "0"),
                           Gold(None if r["label"] == -1 else r["label"],
                                final_answer_correct=right)))
    return out


@dataclass
class Outcome:
    first: int | None
    rollouts: int
    probes: int


async def run_method(method: str, actor: SimActor, ex: Example, n: int,
                     config: GenerateConfig) -> Outcome:
    assert ex.solution is not None and ex.gold is not None
    if method.split()[0] in MC_METHODS:
        row = await label_example(actor, ex, method.split()[0], n, config,
                                  check_right=method.endswith("--check-right"))
        return Outcome(row["first_error"], row["rollouts"], len(row["labels"]))
    steps, right = ex.solution.steps, bool(ex.gold.final_answer_correct)
    if method == "anchor only (no early stop)":
        first, labels = await anchored_first_error(actor, ex.problem, steps, n, config,
                                                   answer_right=right, early_stop=False)
    elif method == "early stop only (binary)":
        if right:
            first, labels = None, []
        else:
            end, labels = await bisect_first_error(actor, ex.problem, steps, len(steps), n,
                                                   config)
            first = None if end == len(steps) else end
    else:
        raise ValueError(method)
    return Outcome(first, sum(lab.rollouts for lab in labels), len(labels))


METHODS = ("per-step", "binary", "anchored", "anchored --check-right", "anchored-scan",
           "anchored-scan --check-right", "anchor only (no early stop)",
           "early stop only (binary)")


def simulate(examples: list[Example], p_good: float, p_bad: float, n: int, trials: int
             ) -> dict[str, list[list[Outcome]]]:
    """Outcomes by method, trial and example."""

    async def all_of() -> dict[str, list[list[Outcome]]]:
        got: dict[str, list[list[Outcome]]] = {m: [] for m in METHODS}
        for t in range(trials):
            config = GenerateConfig(temperature=0.8, seed=1000 * t, max_tokens=64)
            for m in METHODS:
                got[m].append([await run_method(m, SimActor(ex, probabilities(
                    ex, p_good, p_bad), t), ex, n, config) for ex in examples])
        return got

    return asyncio.run(all_of())


def print_table(examples: list[Example], got: dict[str, list[list[Outcome]]]
                ) -> dict[str, tuple[float, float]]:
    assert all(ex.gold is not None and ex.solution is not None for ex in examples)
    right = [bool(ex.gold and ex.gold.final_answer_correct) for ex in examples]
    gold = [ex.gold.first_error if ex.gold else None for ex in examples]

    def mean(xs: Sequence[float]) -> float:
        return statistics.fmean(xs) if xs else float("nan")

    base = got["per-step"]
    per_step = mean([o.rollouts for trial in base for o in trial])
    print(f"    {'method':<30}{'rollouts':>9}{'wrong':>8}{'right':>8}{'probes':>8}"
          f"{'vs per-step':>12}{'same FE':>9}{'(wrong)':>9}{'gold FE':>9}")
    summary = {}
    for m in METHODS:
        outs = got[m]
        flat = [o for trial in outs for o in trial]
        r_all = mean([o.rollouts for o in flat])
        r_wrong = mean([o.rollouts for trial in outs for o, ok in zip(trial, right, strict=True)
                        if not ok])
        r_right = mean([o.rollouts for trial in outs for o, ok in zip(trial, right, strict=True)
                        if ok])
        same = mean([float(o.first == b.first) for trial, bt in zip(outs, base, strict=True)
                     for o, b in zip(trial, bt, strict=True)])
        same_wrong = mean([float(o.first == b.first)
                           for trial, bt in zip(outs, base, strict=True)
                           for o, b, ok in zip(trial, bt, right, strict=True) if not ok])
        agree = mean([float(o.first == g) for trial in outs
                      for o, g in zip(trial, gold, strict=True)])
        ratio = per_step / r_all if r_all else float("inf")
        summary[m] = (ratio, 100 * same)
        print(f"    {m:<30}{r_all:>9.1f}{r_wrong:>8.1f}{r_right:>8.1f}"
              f"{mean([o.probes for o in flat]):>8.1f}{ratio:>11.2f}x{100 * same:>8.1f}%"
              f"{100 * same_wrong:>8.1f}%{100 * agree:>8.1f}%")
    return summary


def part1(args: argparse.Namespace) -> None:
    p_noisy = tuple(float(x) for x in args.noisy.split(","))
    sets = [(f"ProcessBench-MATH, K >= {args.min_steps}", load("math", args.min_steps)),
            ("ProcessBench-GSM8K, all", load("gsm8k", 1))]
    scenarios = [("perfect oracle (p_good=1, p_bad=0)", 1.0, 0.0, 1),
                 (f"noisy actor (p_good={p_noisy[0]}, p_bad={p_noisy[1]}), "
                  f"{args.trials} trials", p_noisy[0], p_noisy[1], args.trials)]
    verdicts = []
    for name, examples in sets:
        ks = [len(ex.solution.steps) for ex in examples if ex.solution]
        n_right = sum(bool(ex.gold and ex.gold.final_answer_correct) for ex in examples)
        n_flaw = sum(bool(ex.gold and ex.gold.final_answer_correct
                          and ex.gold.first_error is not None) for ex in examples)
        print(f"\n  {name}: {len(examples)} solutions, K mean {statistics.fmean(ks):.1f} "
              f"(min {min(ks)}, max {max(ks)}); {len(examples) - n_right} with a wrong final "
              f"answer, {n_right} right ({n_flaw} of them with an erroneous step)")
        print(f"  most probes a search over K candidates needs: binary sum ceil(log2(K+1)) / "
              f"anchored sum ceil(log2 K) = "
              f"{sum(math.ceil(math.log2(k + 1)) for k in ks) / len(ks):.2f} / "
              f"{sum(math.ceil(math.log2(k)) for k in ks) / len(ks):.2f} per solution")
        for sname, pg, pb, trials in scenarios:
            t = time.perf_counter()
            got = simulate(examples, pg, pb, args.rollouts, trials)
            print(f"\n   {sname}  [{time.perf_counter() - t:.1f} s]")
            summary = print_table(examples, got)
            if name.startswith("ProcessBench-MATH"):
                verdicts.append((sname, summary))
    print(f"\n  target (MATH K >= {args.min_steps}): >= 3x fewer rollouts than per-step at the "
          "same first error")
    for sname, summary in verdicts:
        for m in METHODS[1:6]:
            ratio, same = summary[m]
            print(f"    {sname:<48} {m:<28} {ratio:5.2f}x, same first error as per-step "
                  f"{same:5.1f}%")
    print("  columns: rollouts = mean rollouts drawn per solution (wrong/right: solutions "
          "whose own final answer is wrong/right), probes = prefixes rolled out per "
          "solution, same FE = first error equal to per-step's on the same rollouts "
          "((wrong): among solutions with a wrong final answer), gold FE = equal to "
          "ProcessBench's label (None for a correct solution)")


# -- 2. a small real run ---------------------------------------------------------------------
def real_data(path: Path, wrong: int) -> list[dict[str, Any]]:
    """``wrong`` GSM8K test solutions with one injected calculation slip (K >= 3) and one
    untouched reference solution, written to ``path``."""
    from criticlab.label.inject import InjectConfig, inject

    if not GSM8K.is_file():
        raise SystemExit(f"{GSM8K} not found: part 2 needs the shared GSM8K data")
    raw = path.with_name("injected.jsonl")
    inject(InjectConfig(data=str(GSM8K), out=raw, per_problem=1, types=("calculation",),
                        limit=4 * wrong + 4))
    recs = [json.loads(x) for x in raw.read_text(encoding="utf-8").splitlines()]
    bad = [r for r in recs if r["label"] != -1 and len(r["steps"]) >= 3][:wrong]
    good = [r for r in recs if r["label"] == -1 and len(r["steps"]) >= 3][:1]
    path.write_text("".join(json.dumps(r) + "\n" for r in bad + good), encoding="utf-8")
    return bad + good


def part2(args: argparse.Namespace) -> None:
    from criticlab.models.llamacpp import LlamaCppModel

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "slips.jsonl"
        recs = real_data(data, max(args.real - 1, 1))
        model = LlamaCppModel(n_ctx=4096, n_threads=args.threads)
        print(f"\n2. label_mc with {model.name} in process on {len(recs)} GSM8K test solutions "
              f"(K = {[len(r['steps']) for r in recs]}, injected first errors "
              f"{[None if r['label'] == -1 else r['label'] for r in recs]}); "
              f"N={args.real_rollouts}, max_tokens {args.max_tokens}, a fresh store each")

        def run(method: str, out: Path) -> dict[str, Any]:
            config = MCConfig(str(data), out, rollouts=args.real_rollouts, method=method,
                              max_tokens=args.max_tokens, concurrency=1, seed=0)
            t = time.perf_counter()
            m = label_mc(config, model=model)
            m["wall_s"] = time.perf_counter() - t
            return m

        print(f"    {'method':<34}{'rollouts/sol':>13}{'engine calls':>13}{'store hits':>11}"
              f"{'wall s':>8}  first errors")
        for label, method, out in [("per-step", "per-step", tmp / "per-step"),
                                   ("binary", "binary", tmp / "binary"),
                                   ("anchored", "anchored", tmp / "anchored"),
                                   ("anchored-scan", "anchored-scan", tmp / "scan"),
                                   ("anchored-scan again (resumed)", "anchored-scan",
                                    tmp / "scan"),
                                   ("per-step in the scan's dir", "per-step", tmp / "scan")]:
            m = run(method, out)
            fe = list(m["first_errors"].values())
            print(f"    {label:<34}{m['mean_rollouts']:>13.1f}"
                  f"{m['this_run']['engine_calls']:>13}{m['this_run']['store_hits']:>11}"
                  f"{m['wall_s']:>8.1f}  {fe}")
        print("  (engine calls: requests sent to llama.cpp; an early-stopping probe sends one "
              "per chunk. The embedded model's first errors are noise.)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rollouts", type=int, default=8, help="N: rollouts per prefix")
    ap.add_argument("--trials", type=int, default=3, help="seeds of the noisy actor")
    ap.add_argument("--min-steps", type=int, default=10, help="MATH solutions with K >= this")
    ap.add_argument("--noisy", default="0.6,0.02", help="p_good,p_bad of the noisy actor")
    ap.add_argument("--real", type=int, default=3, help="solutions of part 2 (0: skip it)")
    ap.add_argument("--real-rollouts", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (part 2)")
    args = ap.parse_args()
    print(f"1. simulated actor, N={args.rollouts} rollouts per prefix")
    part1(args)
    if args.real:
        part2(args)


if __name__ == "__main__":
    main()
