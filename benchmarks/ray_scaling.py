"""Throughput of `criticlab eval` on Ray: items/s with each number of workers, side by side,
and the ratio to one worker.

Each run critiques the same N items into a fresh run directory with ``evaluate(config,
executor=RayExecutor(...))``; the wall time includes starting the workers and loading their
models (``items/s``), the steady rate counts the items after the first result over the time
since it (``steady/s``). On this machine (local Ray, the embedded GGUF in each worker) the
ratio is bounded by the free CPU cores; on a cluster, point it at the head and at a model
every node can load or reach:

    python benchmarks/ray_scaling.py [--n 8] [--workers 1,2] [--max-tokens 32]
    python benchmarks/ray_scaling.py --address ray://HEAD:10001 --workers 1,2,4,8 \\
        --model vllm:Qwen/Qwen2.5-7B-Instruct --n 2000 --processbench
    python benchmarks/ray_scaling.py --address auto --workers 1,4 \\
        --model openai:Qwen/Qwen2.5-7B-Instruct --base-url http://HOST:8000/v1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray
from _common import items

from criticlab.evaluate import EvalConfig, EvalProgress, evaluate
from criticlab.scale import RayExecutor
from criticlab.types import Example


def one_run(work: list[Example], out: Path, args: argparse.Namespace,
            workers: int | None) -> tuple[float, float, float]:
    """(wall seconds, seconds to the first result, steady items/s) of one eval;
    ``workers=None``: the local executor."""
    config = EvalConfig(benchmark="bench", out=out, critic=args.critic, model=args.model,
                        base_url=args.base_url, concurrency=args.concurrency,
                        max_tokens=args.max_tokens)
    stamps: list[float] = []

    def tick(state: EvalProgress) -> None:
        stamps.append(time.perf_counter())

    t = time.perf_counter()
    if workers is None:
        run = evaluate(config, examples=work, progress=tick)
    else:
        run = evaluate(config, examples=work, progress=tick,
                       executor=RayExecutor(address=args.address, workers=workers))
    wall = time.perf_counter() - t
    assert run.metrics["complete"], run.metrics
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and \
        stamps[-1] > stamps[0] else float("nan")
    return wall, stamps[0] - t, steady


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", default=None,
                    help="Ray cluster (auto, ray://HOST:10001); default: a local one")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--n", type=int, default=8, help="items per run")
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--critic", default="processbench")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=2, help="items in flight per worker")
    ap.add_argument("--processbench", action="store_true",
                    help="ProcessBench-GSM8K items from ../shared/data (default: synthetic)")
    ap.add_argument("--local", action="store_true",
                    help="also run the one-process executor (evaluate) as a baseline")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    work = items(args.n, args.processbench)
    if args.address is None:
        ray.init(num_cpus=max(counts), include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=args.address, log_to_driver=False)
    print(f"cluster: {ray.cluster_resources()}")
    print(f"{args.n} items, critic {args.critic}, model {args.model}, "
          f"max_tokens {args.max_tokens}, {args.concurrency} in flight per worker")
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.local:
            rows.append(("local (1 process)", *one_run(work, Path(tmp) / "local", args, None)))
        for w in counts:
            rows.append((f"ray, {w} worker{'s' * (w > 1)}",
                         *one_run(work, Path(tmp) / f"w{w}", args, w)))
    ray.shutdown()
    base = next(r for r in rows if r[0].startswith("ray"))
    print(f"{'executor':<20} {'wall s':>7} {'first s':>8} {'items/s':>8} {'ratio':>6} "
          f"{'steady/s':>9} {'ratio':>6}")
    for name, wall, first, steady in rows:
        print(f"{name:<20} {wall:7.1f} {first:8.1f} {args.n / wall:8.3f} "
              f"{base[1] / wall:6.2f} {steady:9.3f} {steady / base[3]:6.2f}")
    print("first s: until the first result (workers started, models loaded); ratios: over "
          "the first Ray row's")


if __name__ == "__main__":
    main()
