"""`criticlab eval` against a bare concurrent client, and a rerun from the store.

1. N ProcessBench-style critiques against one local llama.cpp server: ``evaluate()`` (a
   fresh run directory: store, results, metrics) vs a bare ``openai.AsyncOpenAI`` client
   sending the same prompts at the same concurrency. Rounds alternate; medians and ratio
   are printed (target <= 1.05).
2. A rerun of a finished R-item run from its store (default 1,000 ProcessBench items from
   ../shared/data, else synthetic: every result is read back, nothing is sent); its wall time
   is printed (target < 2 s). The first pass is filled by a scripted model that writes a
   ProcessBench-length review (~1,500 characters) ending in \boxed{}, so the stored results
   are realistic in size without spending an hour of CPU on the tiny model.

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
        rerun(args.rerun_items)


def rerun(n: int) -> None:
    from criticlab.cache import CachedModel
    from criticlab.critics.prompted import PromptedCritic
    from criticlab.models.scripted import ScriptedModel
    from criticlab.store import Store

    many = _many(n)
    review = ("Paragraph 0 restates the problem correctly. " * 30).strip()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "many"
        config = EvalConfig(benchmark="bench", out=out, critic="processbench",
                            model="scripted", concurrency=8)
        out.mkdir()
        with Store(out / "store.sqlite") as store:
            model = CachedModel(ScriptedModel(lambda m, c, i: review + r" \boxed{-1}"), store)
            critic = PromptedCritic(model, "processbench")
            t = time.perf_counter()
            evaluate(config, examples=many, critic=critic)
            first = time.perf_counter() - t
            t = time.perf_counter()
            run = evaluate(config, examples=many, critic=critic)
            again = time.perf_counter() - t
        assert run.metrics["this_run"]["resumed_items"] == len(many)
        size = (out / "results.jsonl").stat().st_size / 1e6
    print(f"2. {len(many)} items ({size:.1f} MB of results): first pass {first:.2f} s "
          f"(scripted model); rerun from the store {again:.2f} s (target < 2 s)")


def _many(n: int) -> list[Example]:
    from criticlab.data import load_benchmark

    data = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    try:
        return load_benchmark("processbench", limit=n, data_dir=str(data))
    except Exception:  # no shared data here: synthetic items of the same shape
        return items(n, False)


if __name__ == "__main__":
    main()
