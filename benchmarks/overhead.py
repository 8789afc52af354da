"""criticlab's overhead over a bare OpenAI client, on one local llama.cpp server.

The same N critique requests are sent (a) by criticlab: PromptedCritic -> CachedModel (a
fresh store, so every request really goes out and is written to SQLite) -> OpenAIModel, and
(b) by a bare ``openai.AsyncOpenAI`` client with the same messages and parameters, at the same
concurrency. Rounds alternate (b, a, a, b, ...) so drift on a noisy machine hits both sides;
the script prints each round, the medians and their ratio (target <= 1.05).

    python benchmarks/overhead.py [--n 64] [--concurrency 8] [--max-tokens 32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from _common import items, run_bare

from criticlab.cache import CachedModel
from criticlab.critics.prompted import PromptedCritic
from criticlab.models.base import GenerateConfig
from criticlab.models.llamacpp import serve
from criticlab.models.openai import OpenAIModel
from criticlab.store import Store
from criticlab.types import Example


async def run_criticlab(url: str, work: list[Example], conc: int,
                        config: GenerateConfig) -> float:
    with tempfile.TemporaryDirectory() as d, Store(Path(d) / "s.sqlite") as store:
        model = CachedModel(OpenAIModel("smollm2", base_url=url, concurrency=conc), store)
        critic = PromptedCritic(model, "processbench", config=config)
        t = time.perf_counter()
        await asyncio.gather(*(critic.critique(ex.problem, ex.solution)  # type: ignore[arg-type]
                               for ex in work))
        elapsed = time.perf_counter() - t
        await model.aclose()
        assert model.stats.calls == len(work), model.stats
        return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2, help="runs per side")
    ap.add_argument("--processbench", action="store_true", help="real ProcessBench prompts")
    args = ap.parse_args()
    work = items(args.n, args.processbench)
    config = GenerateConfig(temperature=0.0, seed=0, max_tokens=args.max_tokens)
    source = "ProcessBench-GSM8K" if args.processbench else "synthetic problems"
    print(f"{args.n} requests ({source}), concurrency {args.concurrency}, "
          f"max_tokens {args.max_tokens}, one llama.cpp server on 127.0.0.1")
    times: dict[str, list[float]] = {"bare": [], "criticlab": []}
    with serve(alias="smollm2", n_ctx=4096) as url:
        asyncio.run(run_bare(url, work[:4], args.concurrency, config))  # warm-up
        order = (["bare", "criticlab", "criticlab", "bare"] * args.rounds)[: 2 * args.rounds]
        for side in order:
            fn = run_bare if side == "bare" else run_criticlab
            t = asyncio.run(fn(url, work, args.concurrency, config))
            times[side].append(t)
            print(f"  {side:>9}: {t:7.2f} s")
    bare, ours = statistics.median(times["bare"]), statistics.median(times["criticlab"])
    print(f"median  bare openai client {bare:7.2f} s | criticlab {ours:7.2f} s | "
          f"ratio {ours / bare:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
