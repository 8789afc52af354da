"""n samples of one prompt decoded together vs one after another, on the in-process model.

``LlamaCppModel`` decodes the n samples of a request together (criticlab.models.
llamacpp_batch: the prompt evaluated once, then one ``llama_decode`` per step for all live
samples); ``batch_samples = False`` on the same loaded model gives the old path, one
``create_chat_completion`` per sample (seeds ``seed + i``, the prompt prefix reused from
the cache). Both sides run on the one model object, so the context is the same.

1. Throughput: n samples (default 8) of a stepwise critique prompt at temperature 0.8,
   ``max_tokens`` 64: completion tokens per second of the whole request (prompt evaluation
   included, the cache reset before each side so both evaluate the prompt once), wall time
   and CPU time (the machine may be shared: CPU time is the steadier figure). Rounds
   alternate which side goes first; medians and their ratio are printed. Target: batched
   >= 2.5x sequential. Printed alongside: what llama.cpp's kernels allow on this CPU, the
   cost of one ``llama_decode`` of n tokens (one per sequence) against one of 1 token: the
   ceiling of any batching gain at this thread count.
2. ``label mc`` (per-step: N rollouts from every prefix, each prefix one request) on a few
   GSM8K test solutions with an injected calculation slip (made as benchmarks/mc_cost.py
   makes them, from ../shared/data/gsm8k/test.jsonl), each solution labelled into a fresh
   store on three sides, each side first in turn: sequential, batched, and batched with the
   context reset before every request (so no prefix of the request before is reused: the
   consecutive prefixes of a solution extend each other, and the batched path must keep
   llama.cpp's reuse). Wall time per side and the ratios.

    python benchmarks/batched_samples.py [--n 8] [--max-tokens 64] [--rounds 3]
        [--threads 1] [--solutions 3] [--rollouts 8] [--mc-max-tokens 64] [--skip-mc]

Figures and ratios are printed, not asserted. Sampled texts of the two sides differ (same
seeds, but llama.cpp's logits for a token decoded in a batch differ slightly from one
decoded alone), so token counts differ a little: throughput is per completion token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import items

from criticlab.critics.prompted import PromptedCritic
from criticlab.models.base import GenerateConfig, Generation, Message
from criticlab.models.llamacpp import LlamaCppModel
from criticlab.models.scripted import ScriptedModel


def critique_prompt() -> list[Message]:
    ex = items(1, processbench=False)[0]
    assert ex.solution is not None
    return PromptedCritic(ScriptedModel([]), "stepwise").messages(ex.problem, ex.solution)


def one_side(model: LlamaCppModel, batched: bool, messages: list[Message],
             config: GenerateConfig) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and completion tokens of one n-sample request."""
    model.batch_samples = batched
    model._llm.reset()  # both sides evaluate the prompt once
    wall, cpu = time.perf_counter(), time.process_time()
    gens = model._generate_blocking(messages, config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, sum(g.usage.completion_tokens for g in gens)


def kernel_ceiling(model: LlamaCppModel, n: int, prompt_len: int, reps: int = 10
                   ) -> tuple[float, float]:
    """Median ms of one llama_decode of 1 token and of n tokens (n sequences sharing a
    prompt of ``prompt_len`` tokens), with the model's thread count."""
    import llama_cpp

    llm = model._llm
    llm.reset()
    llm._ctx.kv_cache_clear()
    llm.eval([llm.token_bos()] + [100 + i % 900 for i in range(prompt_len - 1)])
    mem = llama_cpp.llama_get_memory(llm.ctx)
    for i in range(1, n):
        llama_cpp.llama_memory_seq_cp(mem, 0, i, -1, -1)
    llama_cpp.llama_set_n_threads(llm.ctx, model._n_threads, model._n_threads)
    batch = llama_cpp.llama_batch_init(n, 0, 1)
    times: dict[int, list[float]] = {1: [], n: []}
    pos = [prompt_len] * n  # each sequence's next position
    try:
        for _ in range(reps):
            for k in (1, n):
                for j in range(k):
                    batch.token[j] = 200 + j
                    batch.pos[j] = pos[j]
                    batch.n_seq_id[j] = 1
                    batch.seq_id[j][0] = j
                    batch.logits[j] = 1
                    pos[j] += 1
                batch.n_tokens = k
                t = time.perf_counter()
                if llama_cpp.llama_decode(llm.ctx, batch) != 0:
                    raise SystemExit("llama_decode failed")
                times[k].append(time.perf_counter() - t)
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_set_n_threads(llm.ctx, llm.n_threads, llm.n_threads_batch)
        llm.reset()
        llm._ctx.kv_cache_clear()
    return statistics.median(times[1]) * 1e3, statistics.median(times[n]) * 1e3


def part1(model: LlamaCppModel, args: argparse.Namespace) -> None:
    messages = critique_prompt()
    config = GenerateConfig(n=args.n, temperature=0.8, seed=0, max_tokens=args.max_tokens)
    from criticlab.models.llamacpp_batch import capture_request

    request = capture_request(model._llm, model._chat_kwargs(messages, config))
    n_prompt = len(request["prompt"]) if request else 0
    print(f"1. n={args.n} samples of a stepwise critique prompt ({n_prompt} tokens), "
          f"temperature 0.8, max_tokens {args.max_tokens}, {args.threads} thread(s)")
    one_side(model, True, messages, config)  # warm up both paths
    one_side(model, False, messages, replace(config, n=2))
    rows: dict[str, list[tuple[float, float, int]]] = {"sequential": [], "batched": []}
    print(f"  {'round':<7}{'first':<12}{'sequential tok/s':>22}{'batched tok/s':>22}"
          f"{'ratio':>14}")
    print(f"  {'':<19}{'wall':>11}{'cpu':>11}{'wall':>11}{'cpu':>11}{'wall':>7}{'cpu':>7}")
    for r in range(args.rounds):
        order = ["sequential", "batched"] if r % 2 == 0 else ["batched", "sequential"]
        got = {side: one_side(model, side == "batched", messages, config) for side in order}
        for side, fig in got.items():
            rows[side].append(fig)
        s, b = (_rates(got[k]) for k in ("sequential", "batched"))
        print(f"  {r + 1:<7}{order[0]:<12}{s[0]:>11.1f}{s[1]:>11.1f}{b[0]:>11.1f}{b[1]:>11.1f}"
              f"{b[0] / s[0]:>6.2f}x{b[1] / s[1]:>6.2f}x")
    med = {side: tuple(statistics.median(_rates(f)[i] for f in figs) for i in (0, 1))
           for side, figs in rows.items()}
    s, b = med["sequential"], med["batched"]
    print(f"  {'median':<19}{s[0]:>11.1f}{s[1]:>11.1f}{b[0]:>11.1f}{b[1]:>11.1f}"
          f"{b[0] / s[0]:>6.2f}x{b[1] / s[1]:>6.2f}x")
    tokens = {side: sum(f[2] for f in figs) for side, figs in rows.items()}
    print(f"  completion tokens over all rounds: sequential {tokens['sequential']}, "
          f"batched {tokens['batched']}")
    met = min(b[0] / s[0], b[1] / s[1]) >= 2.5
    print(f"  target: batched >= 2.5x sequential -> {b[0] / s[0]:.2f}x wall, "
          f"{b[1] / s[1]:.2f}x cpu ({'met' if met else 'not met'})")
    one, many = kernel_ceiling(model, args.n, n_prompt or 300)
    print(f"  llama_decode here: 1 token {one:.1f} ms, {args.n} tokens ({args.n} sequences) "
          f"{many:.1f} ms -> at most {args.n * one / many:.2f}x tokens/s from batching")


def _rates(fig: tuple[float, float, int]) -> tuple[float, float]:
    wall, cpu, tokens = fig
    return tokens / wall, tokens / cpu


class NoReuse:
    """The model with llama.cpp's context reset before every request: each batched request
    evaluates its whole prompt (a baseline for the prefix reuse between requests)."""

    def __init__(self, model: LlamaCppModel) -> None:
        self.model, self.name = model, model.name

    async def generate(self, messages: Sequence[Message], config: GenerateConfig
                       ) -> list[Generation]:
        def run() -> list[Generation]:
            self.model._llm.reset()  # concurrency 1: no other request in between
            return self.model._generate_blocking(messages, config)

        return await asyncio.to_thread(run)


SIDES = ("sequential", "batched", "batched, no reuse")


def part2(model: LlamaCppModel, args: argparse.Namespace) -> None:
    from mc_cost import make_data

    from criticlab.label.mc import MCConfig, label_mc

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        recs = make_data(tmp / "slips.jsonl", args.solutions, args.min_steps)
        print(f"\n2. label mc per-step, {len(recs)} GSM8K test solutions with an injected slip "
              f"(K = {[len(r['steps']) for r in recs]} steps), N={args.rollouts} rollouts per "
              f"prefix, temperature 0.8, max_tokens {args.mc_max_tokens}, concurrency 1; "
              "sides: samples one after another (prefix reused), together (prefix reused), "
              "together with the context reset before every request")
        total = dict.fromkeys(SIDES, 0.0)
        found: dict[str, list[Any]] = {side: [] for side in SIDES}
        for j, rec in enumerate(recs):
            data = tmp / f"sol{j}.jsonl"
            data.write_text(json.dumps(rec) + "\n", encoding="utf-8")
            took = {}
            for side in SIDES[j % 3:] + SIDES[: j % 3]:  # each side first in turn
                model.batch_samples = side != "sequential"
                model._llm.reset()
                config = MCConfig(str(data), tmp / side / str(j), rollouts=args.rollouts,
                                  method="per-step", temperature=0.8,
                                  max_tokens=args.mc_max_tokens, concurrency=1, seed=0)
                actor = NoReuse(model) if side.endswith("no reuse") else model
                t = time.perf_counter()
                label_mc(config, model=actor)
                took[side] = time.perf_counter() - t
                total[side] += took[side]
                row = json.loads((tmp / side / str(j) / "labels.jsonl").read_text())
                found[side].append(row["first_error"])
            print(f"    {rec['id']:<28} K={len(rec['steps'])}  "
                  + ", ".join(f"{side} {took[side]:.1f} s" for side in SIDES))
        b = total["batched"]
        print("  " + ", ".join(f"{side} {total[side]:.1f} s" for side in SIDES))
        print(f"  sequential / batched: {total['sequential'] / b:.2f}x; prefix reuse within "
              f"batched (no reuse / reuse): {total['batched, no reuse'] / b:.2f}x")
        print("  first error found: " + ", ".join(f"{side} {found[side]}" for side in SIDES)
              + f"; injected {[r['label'] for r in recs]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8, help="samples per request")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    ap.add_argument("--solutions", type=int, default=3)
    ap.add_argument("--rollouts", type=int, default=8, help="N: completions per prefix")
    ap.add_argument("--mc-max-tokens", type=int, default=64)
    ap.add_argument("--min-steps", type=int, default=4)
    ap.add_argument("--skip-mc", action="store_true", help="part 1 only")
    args = ap.parse_args()
    model = LlamaCppModel(n_threads=args.threads)  # n_ctx 8192, as criticlab loads it
    print(f"{model.name} in-process, n_ctx 8192")
    part1(model, args)
    if not args.skip_mc:
        part2(model, args)


if __name__ == "__main__":
    main()
