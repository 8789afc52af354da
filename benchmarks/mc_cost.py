"""Monte Carlo step labels: per-step labelling vs the binary search, and rollouts with vs
without llama.cpp's prefix reuse.

Data: solutions with a known first error, made by ``criticlab.label.inject`` (one calculation
slip each) from the first GSM8K test problems in ../shared/data/gsm8k/test.jsonl.

1. Per-step labelling (N rollouts from every prefix) and the binary search (OmegaPRM) side
   by side, each through ``label_mc`` into a fresh store (so neither reads the other's
   rollouts), on one in-process model: rollouts and tokens per solution, wall time, and
   agreement of the estimated first error with the injected one. Target: binary >= 3x
   fewer rollouts at equal agreement. The binary search needs at most ceil(log2(K+1)) probes
   for K steps, so on short GSM8K solutions the best possible ratio is printed alongside.
2. The per-step rollouts of the first R of those solutions with prefix reuse (as
   ``criticlab.label.mc`` asks them: each prefix's N samples in one request, prefixes in
   order) and without it. "Without" resets the llama.cpp context (``Llama.reset()``) before
   every sample, so no token of the request before is reused and every sample evaluates its
   whole prompt; prompts, seeds and sampling are otherwise the same. A reset was chosen
   over a unique nonce line at the head of each prompt because it keeps the prompt tokens
   identical (a nonce adds tokens). Both sides draw the samples of a request one after
   another (``batch_samples`` off: benchmarks/batched_samples.py measures decoding them
   together). The texts agree only up to llama.cpp's numerics: logits
   of a prompt evaluated in one batch differ slightly from those of one evaluated in pieces,
   so sampled texts may part after a few tokens (greedy ones agree); the number of prefixes
   whose rollouts came out identical is printed. (In label_mc the store, not the engine,
   makes rollouts reproducible.) Solutions alternate which side goes first. Target: reuse
   >= 2x faster.

    python benchmarks/mc_cost.py [--solutions 5] [--rollouts 4] [--max-tokens 32]
                                 [--reuse-solutions 2] [--threads 1] [--min-steps 4]

Figures and ratios are printed, not asserted; the embedded model (SmolLM2-135M) is far too
weak to label well, so its agreement figures show the plumbing, not the method's quality.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from criticlab.label.mc import MCConfig, StepLabel, label_mc, rollout_labels
from criticlab.models.base import GenerateConfig, Generation, Message
from criticlab.models.llamacpp import LlamaCppModel
from criticlab.types import Problem

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"


class NoReuse:
    """The in-process model with llama.cpp's context reset before every sample, so nothing
    of an earlier prompt is reused. Reaches into LlamaCppModel (a benchmark-only baseline)."""

    def __init__(self, model: LlamaCppModel) -> None:
        self.model = model
        self.name = model.name

    async def generate(self, messages: Sequence[Message], config: GenerateConfig
                       ) -> list[Generation]:
        return await asyncio.to_thread(self._blocking, messages, config)

    def _blocking(self, messages: Sequence[Message], config: GenerateConfig
                  ) -> list[Generation]:
        out = []
        with self.model._lock:
            for i in range(config.n):
                self.model._llm.reset()
                seed = None if config.seed is None else config.seed + i
                out.append(self.model._one(messages, config, seed))
        return out


def make_data(path: Path, solutions: int, min_steps: int) -> list[dict[str, Any]]:
    """The first ``solutions`` injected-error records (calculation slips) with at least
    ``min_steps`` steps, written to ``path``."""
    if not GSM8K.is_file():
        raise SystemExit(f"{GSM8K} not found: this benchmark needs the shared GSM8K data")
    try:
        from criticlab.label.inject import InjectConfig, inject
    except ImportError as e:
        raise SystemExit(f"criticlab.label.inject is not importable yet ({e}); "
                         "it makes the data this benchmark labels") from None
    limit = 2 * solutions + 5
    while True:
        raw = path.with_name("injected.jsonl")
        inject(InjectConfig(data=str(GSM8K), out=raw, per_problem=1, types=("calculation",),
                            limit=limit))
        recs = [json.loads(x) for x in raw.read_text(encoding="utf-8").splitlines()]
        wrong = [r for r in recs if r["label"] != -1 and len(r["steps"]) >= min_steps]
        if len(wrong) >= solutions or limit >= 1319:
            break
        limit *= 2
    wrong = wrong[:solutions]
    if not wrong:
        raise SystemExit("no injected records were made: nothing to label")
    path.write_text("".join(json.dumps(r) + "\n" for r in wrong), encoding="utf-8")
    return wrong


def part1(model: LlamaCppModel, data: Path, tmp: Path, args: argparse.Namespace
          ) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    for method in ("per-step", "binary"):
        config = MCConfig(str(data), tmp / method, rollouts=args.rollouts, method=method,
                          temperature=args.temperature, max_tokens=args.max_tokens,
                          concurrency=1, seed=args.seed)
        t = time.perf_counter()
        metrics = label_mc(config, model=model)
        metrics["wall_s"] = time.perf_counter() - t
        rows = [json.loads(x) for x in (tmp / method / "labels.jsonl").read_text().splitlines()]
        metrics["rows"] = rows
        runs[method] = metrics
    return runs


def print_part1(runs: dict[str, dict[str, Any]], ks: list[int]) -> None:
    ps, bs = runs["per-step"], runs["binary"]

    def row(name: str, a: float, b: float, fmt: str = "{:.1f}") -> None:
        ratio = f"{a / b:.2f}x" if b else "-"
        print(f"  {name:<28}{fmt.format(a):>12}{fmt.format(b):>12}{ratio:>10}")

    print(f"  {'':<28}{'per-step':>12}{'binary':>12}{'ratio':>10}")
    row("rollouts / solution", ps["mean_rollouts"], bs["mean_rollouts"])
    row("prefixes rolled out / sol.", ps["mean_prefixes"], bs["mean_prefixes"])
    row("tokens / solution", ps["mean_tokens"], bs["mean_tokens"], "{:.0f}")
    row("  of which completion", ps["mean_completion_tokens"], bs["mean_completion_tokens"],
        "{:.0f}")
    row("engine calls", ps["this_run"]["engine_calls"], bs["this_run"]["engine_calls"], "{:.0f}")
    row("wall time (s)", ps["wall_s"], bs["wall_s"])

    def agree(m: dict[str, Any]) -> str:
        exact = round(m["agreement"] * m["agreement_n"] / 100)
        return f"{m['agreement']:.0f}% ({exact}/{m['agreement_n']})"

    print(f"  {'agreement with injected label':<28}{agree(ps):>12}{agree(bs):>12}")
    same = sum(a["first_error"] == b["first_error"] for a, b in zip(ps["rows"], bs["rows"],
                                                                    strict=True))
    print(f"  binary names the same first error as per-step: {same}/{len(ps['rows'])}")
    for a, b in zip(ps["rows"], bs["rows"], strict=True):
        print(f"    {a['id']:<28} K={len(a['steps'])} injected={a['gold_first_error']} "
              f"per-step={a['first_error']} (hard {a['hard']}, soft "
              f"{[round(s, 2) for s in a['soft']]}) binary={b['first_error']} "
              f"(probes {[p['index'] for p in b['labels']]})")
    best = sum(ks) / sum(math.ceil(math.log2(k + 1)) for k in ks)
    ratio = ps["mean_rollouts"] / bs["mean_rollouts"] if bs["mean_rollouts"] else float("inf")
    equal = ps["agreement"] == bs["agreement"]
    print(f"  target: binary >= 3x fewer rollouts at equal agreement -> {ratio:.2f}x, "
          f"agreement {'equal' if equal else 'differs'} "
          f"({'met' if ratio >= 3 and equal else 'not met'}); the most these K allow: "
          f"sum K / sum ceil(log2(K+1)) = {best:.2f}x")


async def timed(model: Any, problem: Problem, steps: Sequence[str], n: int,
                config: GenerateConfig) -> tuple[float, list[StepLabel]]:
    t = time.perf_counter()
    labels = await rollout_labels(model, problem, steps, n, config)
    return time.perf_counter() - t, labels


def part2(model: LlamaCppModel, recs: list[dict[str, Any]], args: argparse.Namespace
          ) -> None:
    config = GenerateConfig(temperature=args.temperature, seed=args.seed,
                            max_tokens=args.max_tokens)
    no_reuse = NoReuse(model)
    model.batch_samples = False  # NoReuse draws samples one at a time: so does the other side
    total = {"reuse": 0.0, "none": 0.0}
    same = prefixes = rollouts = 0
    for j, r in enumerate(recs):
        problem = Problem(r["id"], r["problem"], r["reference_answer"])
        sides = [("reuse", model), ("none", no_reuse)]
        if j % 2:
            sides.reverse()
        got: dict[str, list[StepLabel]] = {}
        took: dict[str, float] = {}
        for name, m in sides:
            model._llm.reset()  # neither side starts from the other's tokens
            took[name], got[name] = asyncio.run(timed(m, problem, r["steps"], args.rollouts,
                                                      config))
            total[name] += took[name]
        same += sum(a.answers == b.answers for a, b in zip(got["reuse"], got["none"],
                                                           strict=True))
        prefixes += len(r["steps"])
        rollouts += len(r["steps"]) * args.rollouts
        print(f"    {r['id']:<28} K={len(r['steps'])}  with reuse {took['reuse']:.1f} s, "
              f"without {took['none']:.1f} s")
    ratio = total["none"] / total["reuse"] if total["reuse"] else float("inf")
    print(f"  {len(recs)} solutions, {prefixes} prefixes, {rollouts} rollouts "
          f"(N={args.rollouts} per prefix, one request each)")
    print(f"  with prefix reuse:    {total['reuse']:.1f} s")
    print(f"  without (reset):      {total['none']:.1f} s")
    print(f"  time ratio without/with: {ratio:.2f}x   (target >= 2x: "
          f"{'met' if ratio >= 2 else 'not met'})")
    print(f"  prefixes whose rollouts came out identical on both sides: {same}/{prefixes}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--solutions", type=int, default=5)
    ap.add_argument("--rollouts", type=int, default=4, help="N: completions per prefix")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse-solutions", type=int, default=2,
                    help="how many of the solutions part 2 rolls out on both sides")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    ap.add_argument("--min-steps", type=int, default=4,
                    help="use only solutions with at least this many steps")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "slips.jsonl"
        recs = make_data(data, args.solutions, args.min_steps)
        ks = [len(r["steps"]) for r in recs]
        model = LlamaCppModel(n_ctx=4096, n_threads=args.threads)
        print(f"Monte Carlo labels: {len(recs)} GSM8K test solutions with one injected "
              f"calculation slip each (steps K = {ks})")
        print(f"actor {model.name} in-process, {args.threads} llama.cpp thread(s); "
              f"N={args.rollouts} rollouts per prefix, temperature {args.temperature}, "
              f"max_tokens {args.max_tokens}, seed {args.seed}")
        print("\n1. per-step labelling vs binary search (label_mc, a fresh store each)")
        print_part1(part1(model, data, tmp, args), ks)
        print(f"\n2. per-step rollouts with vs without llama.cpp prefix reuse "
              f"(first {min(args.reuse_solutions, len(recs))} solutions)")
        part2(model, recs[: args.reuse_solutions], args)


if __name__ == "__main__":
    main()
