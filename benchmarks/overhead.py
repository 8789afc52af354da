"""criticlab's overhead over a bare OpenAI client, on one local llama.cpp server.

The same N critique requests (short synthetic word problems by default, so that the
server's own work is small and criticlab's overhead shows; ``--processbench`` uses the first N
records of ProcessBench-GSM8K from ../shared/data) are sent
(a) by criticlab: PromptedCritic -> CachedModel (a fresh store, so every request really goes
    out and is written to SQLite) -> OpenAIModel, and
(b) by a bare ``openai.AsyncOpenAI`` client with the same messages and parameters,
at the same concurrency. The rounds alternate (b, a, a, b, ...) so drift on a noisy machine
hits both sides; the script prints each round, the medians and their ratio (target <= 1.05).

    python benchmarks/overhead.py [--n 64] [--concurrency 8] [--max-tokens 48] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from openai import AsyncOpenAI

from criticlab.critics.prompted import PromptedCritic
from criticlab.models.base import GenerateConfig
from criticlab.models.llamacpp import serve
from criticlab.models.openai import OpenAIModel
from criticlab.store import CachedModel, Store
from criticlab.types import Problem, Solution

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "processbench" / "gsm8k.json"


def items(n: int, processbench: bool) -> list[tuple[Problem, Solution]]:
    if processbench:
        if not DATA.is_file():
            raise SystemExit(f"{DATA} not found: run without --processbench")
        recs = json.loads(DATA.read_text(encoding="utf-8"))[:n]
        return [(Problem(str(r["id"]), r["problem"]), Solution(tuple(r["steps"]))) for r in recs]
    out = []
    for i in range(n):
        a, b = 3 + i, 4 + 2 * i
        out.append((Problem(f"s{i}", f"Tom has {a} bags of {b} apples. How many apples?"),
                    Solution((f"{a} * {b} = {a * b}", f"The answer is {a * b}."))))
    return out


async def run_criticlab(url: str, work: list[tuple[Problem, Solution]], conc: int,
                        config: GenerateConfig) -> float:
    with tempfile.TemporaryDirectory() as d, Store(Path(d) / "s.sqlite") as store:
        model = CachedModel(OpenAIModel("smollm2", base_url=url, concurrency=conc), store)
        critic = PromptedCritic(model, "processbench", config=config)
        t = time.perf_counter()
        await asyncio.gather(*(critic.critique(p, s) for p, s in work))
        elapsed = time.perf_counter() - t
        assert model.stats.calls == len(work), model.stats
        return elapsed


async def run_bare(url: str, work: list[tuple[Problem, Solution]], conc: int,
                   config: GenerateConfig) -> float:
    client = AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    critic = PromptedCritic(None, "processbench")  # type: ignore[arg-type]  # prompts only
    sem = asyncio.Semaphore(conc)

    async def one(p: Problem, s: Solution) -> str:
        async with sem:
            r = await client.chat.completions.create(
                model="smollm2",
                messages=[m.to_dict() for m in critic.messages(p, s)],  # type: ignore[misc]
                temperature=config.temperature, top_p=config.top_p, seed=config.seed,
                max_tokens=config.max_tokens,
            )
            return r.choices[0].message.content or ""

    t = time.perf_counter()
    await asyncio.gather(*(one(p, s) for p, s in work))
    elapsed = time.perf_counter() - t
    await client.close()
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
