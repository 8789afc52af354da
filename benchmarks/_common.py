"""Shared pieces of the overhead benchmarks: the work items and the bare-client baseline."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from openai import AsyncOpenAI

from criticlab.critics.prompted import PromptedCritic
from criticlab.models.base import GenerateConfig
from criticlab.models.scripted import ScriptedModel
from criticlab.types import Example, Gold, Problem, Solution

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "processbench" / "gsm8k.json"


def items(n: int, processbench: bool) -> list[Example]:
    """N short synthetic word problems (the server's own work stays small, so criticlab's
    overhead shows), or the first N records of ProcessBench-GSM8K."""
    if processbench:
        if not DATA.is_file():
            raise SystemExit(f"{DATA} not found: run without --processbench")
        recs = json.loads(DATA.read_text(encoding="utf-8"))[:n]
        return [Example(Problem(str(r["id"]), r["problem"], metadata={"subset": "gsm8k"}),
                        Solution(tuple(r["steps"])),
                        Gold(None if r["label"] == -1 else r["label"]))
                for r in recs]
    out = []
    for i in range(n):
        a, b = 3 + i, 4 + 2 * i
        out.append(Example(
            Problem(f"s{i}", f"Tom has {a} bags of {b} apples. How many apples?",
                    metadata={"subset": "synthetic"}),
            Solution((f"{a} * {b} = {a * b}", f"The answer is {a * b}.")),
            Gold(None),
        ))
    return out


async def run_bare(url: str, work: list[Example], conc: int, config: GenerateConfig) -> float:
    """The baseline: the same ProcessBench prompts sent by a bare ``AsyncOpenAI`` client."""
    client = AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    prompts = PromptedCritic(ScriptedModel([]), "processbench")  # renders prompts only
    sem = asyncio.Semaphore(conc)

    async def one(ex: Example) -> str:
        assert ex.solution is not None
        async with sem:
            r = await client.chat.completions.create(
                model="smollm2",
                messages=[m.to_dict() for m in prompts.messages(ex.problem, ex.solution)],  # type: ignore[misc]
                temperature=config.temperature, top_p=config.top_p, seed=config.seed,
                max_tokens=config.max_tokens,
            )
            return r.choices[0].message.content or ""

    t = time.perf_counter()
    await asyncio.gather(*(one(ex) for ex in work))
    elapsed = time.perf_counter() - t
    await client.close()
    return elapsed
