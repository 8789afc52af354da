"""`criticlab eval` against a bare concurrent client, and a rerun from the store.

1. N ProcessBench-style critiques against one local llama.cpp server: ``evaluate()`` (a
   fresh run directory: store, results, metrics) vs a bare ``openai.AsyncOpenAI`` client
   sending the same prompts at the same concurrency. Rounds alternate; medians and ratio
   are printed (target <= 1.05).
2. A rerun of a finished R-item run from its store (default 1,000 items: every result is
   read back, nothing is sent); its wall time is printed (target < 2 s). The R items are
   first evaluated for real with max_tokens=1, which is what makes that part slow.

    python benchmarks/eval_overhead.py [--n 32] [--concurrency 8] [--max-tokens 32]
                                       [--rerun-items 1000] [--processbench]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from _common import items, run_bare

from criticlab.evaluate import EvalConfig, evaluate
from criticlab.models.base import GenerateConfig
from criticlab.models.llamacpp import serve
from criticlab.types import Example


def run_eval(url: str, work: list[Example], conc: int, max_tokens: int, out: Path) -> float:
    config = EvalConfig(benchmark="bench", out=out, critic="processbench",
                        model="openai:smollm2", base_url=url, concurrency=conc,
                        max_tokens=max_tokens)
    t = time.perf_counter()
    run = evaluate(config, examples=work)
    elapsed = time.perf_counter() - t
    assert run.metrics["complete"], run.metrics
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2, help="runs per side")
    ap.add_argument("--rerun-items", type=int, default=1000)
    ap.add_argument("--processbench", action="store_true", help="real ProcessBench prompts")
    args = ap.parse_args()
    work = items(args.n, args.processbench)
    source = "ProcessBench-GSM8K" if args.processbench else "synthetic problems"
    print(f"1. {args.n} critiques ({source}), concurrency {args.concurrency}, "
          f"max_tokens {args.max_tokens}, one llama.cpp server on 127.0.0.1")
    config = GenerateConfig(temperature=0.0, seed=0, max_tokens=args.max_tokens)
    times: dict[str, list[float]] = {"bare": [], "criticlab eval": []}
    with tempfile.TemporaryDirectory() as tmp, serve(alias="smollm2", n_ctx=4096) as url:
        asyncio.run(run_bare(url, work[:4], args.concurrency, config))  # warm-up
        order = (["bare", "criticlab eval", "criticlab eval", "bare"] * args.rounds)
        for k, side in enumerate(order[: 2 * args.rounds]):
            if side == "bare":
                t = asyncio.run(run_bare(url, work, args.concurrency, config))
            else:
                t = run_eval(url, work, args.concurrency, args.max_tokens, Path(tmp) / f"r{k}")
            times[side].append(t)
            print(f"   {side:>14}: {t:7.2f} s")
        bare, ours = statistics.median(times["bare"]), statistics.median(times["criticlab eval"])
        print(f"   median  bare client {bare:.2f} s | criticlab eval {ours:.2f} s | "
              f"ratio {ours / bare:.3f} (target <= 1.05)")

        if args.rerun_items:
            many = items(args.rerun_items, False)
            out = Path(tmp) / "many"
            first = run_eval(url, many, args.concurrency, 1, out)
            again = run_eval(url, many, args.concurrency, 1, out)
            print(f"2. {args.rerun_items} items: first run {first:.1f} s (max_tokens=1); "
                  f"rerun from the store {again:.2f} s (target < 2 s)")


if __name__ == "__main__":
    main()
