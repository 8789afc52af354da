"""Free text vs schema-constrained critiques (``--structured``) on ProcessBench-GSM8K.

For the ``processbench`` and ``stepwise`` critics with one model (the embedded SmolLM2 by
default), each run critiques the same first ``--limit`` items into a fresh run directory,
free text then structured, and prints side by side: unparsed %, ProcessBench F1 (acc_err,
acc_cor), completion tokens per item and seconds per item. In-process engines decode one
request at a time, so seconds per item are comparable within one run of this script.

    python benchmarks/structured.py [--limit 40] [--max-tokens 512] [--model embedded]
                                    [--data ../shared/data/processbench/gsm8k.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from criticlab.evaluate import EvalConfig, evaluate
from criticlab.metrics import processbench

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "processbench" / "gsm8k.json"


def one(data: Path, critic: str, structured: bool, args: argparse.Namespace,
        out: Path) -> dict[str, float]:
    config = EvalConfig(benchmark=str(data), out=out, critic=critic, model=args.model,
                        limit=args.limit, max_tokens=args.max_tokens, concurrency=1,
                        threads=args.threads, structured=structured)
    started = time.perf_counter()
    run = evaluate(config)
    elapsed = time.perf_counter() - started
    n = len(run.results)
    pb = processbench(run.results)
    tokens = sum(r.critique.usage.completion_tokens for r in run.results if r.critique)
    unparsed = sum(1 for r in run.results if r.critique is not None and not r.critique.parsed)
    return {"n": n, "unparsed": 100 * unparsed / n, "f1": pb["f1"], "acc_err": pb["acc_err"],
            "acc_cor": pb["acc_cor"], "tokens": tokens / n, "seconds": elapsed / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--critics", default="processbench,stepwise")
    args = ap.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data}: no such file (ProcessBench's gsm8k.json)")
    print(f"ProcessBench-GSM8K, first {args.limit} items, {args.model}, "
          f"max_tokens {args.max_tokens}, one request at a time")
    head = (f"{'critic':<14}{'output':<12}{'unparsed %':>11}{'F1':>7}{'acc_err':>9}"
            f"{'acc_cor':>9}{'tokens/item':>13}{'s/item':>8}")
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        for critic in args.critics.split(","):
            rows = {}
            for structured in (False, True):
                label = "structured" if structured else "free text"
                r = one(args.data, critic, structured, args, Path(tmp) / f"{critic}-{label}")
                rows[label] = r
                print(f"{critic:<14}{label:<12}{r['unparsed']:>11.1f}{r['f1']:>7.1f}"
                      f"{r['acc_err']:>9.1f}{r['acc_cor']:>9.1f}{r['tokens']:>13.1f}"
                      f"{r['seconds']:>8.2f}", flush=True)
            free, st = rows["free text"], rows["structured"]
            print(f"{'':<14}{'ratio s/f':<12}{'':>11}{'':>7}{'':>9}{'':>9}"
                  f"{st['tokens'] / max(free['tokens'], 1e-9):>13.2f}"
                  f"{st['seconds'] / max(free['seconds'], 1e-9):>8.2f}")


if __name__ == "__main__":
    main()
