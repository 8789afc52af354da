"""Does a small SFT budget make the embedded model a better ProcessBench-style critic?

1. Data: ``criticlab.label.inject`` on the first ``--train-problems`` GSM8K train problems
   (../shared/data/gsm8k/train.jsonl): each reference solution untouched (label -1) plus
   ``--train-per-problem`` copies with one injected error (label = the injected step; the
   default 1 gives as many correct rows as wrong ones, so "always a step" is not a shortcut).
2. Rows: ``rows_for("sft", ...)``, i.e. the ProcessBench prompt and, as the answer, the
   reference critique stating the gold label (no teacher critiques).
3. Training: ``train_sft`` of a LoRA adapter on the embedded SmolLM2-135M (or ``--model``)
   for ``--steps`` optimizer steps of ``--batch-size`` rows (the fixed budget; its wall time
   is printed).
4. Evaluation: ``criticlab.evaluate`` with the ``processbench`` critic on records injected
   the same way (``--per-problem`` errors each) into the first ``--test-problems`` GSM8K
   *test* problems, once with the base (``hf:embedded``, or ``hf:MODEL``) and once with the
   trained adapter (``hf:OUT``), both through the same transformers engine, greedy,
   ``--max-tokens`` per critique. ProcessBench's acc_err, acc_cor and F1 side by side, with
   how often each flags wrong and right solutions, the parse-failure rate and what was
   predicted.

    python benchmarks/train_critic.py [--train-problems 40] [--steps 16] [--lr 5e-4]
        [--batch-size 2] [--test-problems 15] [--max-tokens 96] [--threads 1] [--model M]
        [--out DIR]

Defaults take about 15 minutes on 2 busy CPU cores (an SFT step of 2 GSM8K-length rows took
8-26 s there with 1 thread; the base writes up to ``--max-tokens`` per critique at ~20
tokens/s, the trained critic stops after ~20): 16 steps is a budget for checking the
plumbing, not for a good critic. Both models get the same token budget, large enough for the
base to reach its verdict when it writes one. Figures are printed, not asserted. The
test items are 1/3 correct solutions and 2/3 with an error; a critic that always answers -1
gets acc_cor 100, acc_err 0 and F1 0.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k"


def inject_records(split: str, problems: int, per_problem: int, out: Path) -> list[Any]:
    from criticlab.data import load_benchmark
    from criticlab.label.inject import InjectConfig, inject

    stats = inject(InjectConfig(str(GSM8K / f"{split}.jsonl"), out, per_problem=per_problem,
                                limit=problems))
    examples = load_benchmark(str(out))
    print(f"{split}: {stats.records} records ({stats.correct} correct) from "
          f"{stats.problems} problems ({stats.skipped} skipped)")
    return examples


def evaluate_model(model: str, test_file: Path, out: Path, max_tokens: int) -> dict[str, Any]:
    from criticlab.evaluate import EvalConfig, evaluate
    from criticlab.metrics import prediction, processbench

    started = time.monotonic()
    run = evaluate(EvalConfig(benchmark=str(test_file), out=out, critic="processbench",
                              model=model, max_tokens=max_tokens, concurrency=1))
    preds = collections.Counter(
        "unparsed" if p is None else ("-1" if p == -1 else "a step")
        for p in (prediction(r) for r in run.results))
    pb = processbench(run.results)
    sample = next((r.critique.raw for r in run.results if r.critique is not None), "")
    j = run.metrics["judgment"]
    flags = {"flags_wrong": 100 * j["tp"] / max(1, j["tp"] + j["fn"]),
             "flags_right": 100 * j["fp"] / max(1, j["fp"] + j["tn"])}
    return {**flags, "acc_err": pb["acc_err"], "acc_cor": pb["acc_cor"], "f1": pb["f1"],
            "parse_failure_rate": run.metrics["parse_failure_rate"], "n": pb["n"],
            "predicted": dict(preds), "seconds": time.monotonic() - started,
            "sample": sample}


def uniform_guess(examples: list[Any]) -> dict[str, float]:
    """acc_err, acc_cor (expected, %) and the F1 of those of a critic that answers one of
    -1..n-1 uniformly at random for a solution of n steps."""
    err = [1 / (len(ex.solution.steps) + 1) for ex in examples if ex.gold.first_error is not None]
    cor = [1 / (len(ex.solution.steps) + 1) for ex in examples if ex.gold.first_error is None]
    acc_err = 100 * sum(err) / len(err) if err else 0.0
    acc_cor = 100 * sum(cor) / len(cor) if cor else 0.0
    f1 = 2 * acc_err * acc_cor / (acc_err + acc_cor) if acc_err + acc_cor else 0.0
    return {"acc_err": acc_err, "acc_cor": acc_cor, "f1": f1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-problems", type=int, default=40)
    ap.add_argument("--test-problems", type=int, default=15)
    ap.add_argument("--per-problem", type=int, default=2, help="injected errors per test problem")
    ap.add_argument("--train-per-problem", type=int, default=1,
                    help="injected errors per train problem")
    ap.add_argument("--model", default="embedded",
                    help="base model: embedded, a local checkpoint directory or a hub id")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=768)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: CRITICLAB_THREADS, else 1)")
    ap.add_argument("--out", type=Path, default=None, help="keep everything in this folder")
    args = ap.parse_args(argv)
    for split in ("train", "test"):
        if not (GSM8K / f"{split}.jsonl").is_file():
            print(f"error: {GSM8K / f'{split}.jsonl'} not found", file=sys.stderr)
            return 2
    if args.threads:
        os.environ["CRITICLAB_THREADS"] = str(args.threads)

    from criticlab.label.export import rows_for, write_rows
    from criticlab.train.sft import CriticSFTConfig, train_sft

    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        train = inject_records("train", args.train_problems, args.train_per_problem,
                               work / "train_injected.jsonl")
        test_file = work / "test_injected.jsonl"
        test = inject_records("test", args.test_problems, args.per_problem, test_file)
        rows = rows_for("sft", train)
        data = write_rows(rows, work / "sft.jsonl", dataset=False)
        print(f"{len(rows)} SFT rows; example answer: "
              f"{json.dumps(rows[1]['messages'][-1]['content'])}")

        config = CriticSFTConfig(data=data, out=work / "critic", model=args.model,
                                 max_steps=args.steps, learning_rate=args.lr,
                                 batch_size=args.batch_size, max_length=args.max_length,
                                 threads=args.threads)
        began = time.monotonic()

        def report(step: int, steps: int, loss: float | None) -> None:
            if step % 10 == 0 or step == steps:
                shown = "?" if loss is None else f"{loss:.3f}"
                print(f"  step {step}/{steps}: loss {shown} "
                      f"({(time.monotonic() - began) / 60:.1f} min)", flush=True)

        result = train_sft(config, progress=report)
        per_step = sorted(result.step_seconds)
        print(f"\nSFT (LoRA r={config.lora_r}, lr {config.learning_rate}): {result.steps} steps "
              f"x {config.batch_size} rows = {result.steps * config.batch_size} rows seen "
              f"({result.steps * config.batch_size / len(rows):.2f} epochs) in "
              f"{result.seconds / 60:.1f} min; median step {per_step[len(per_step) // 2]:.1f}s; "
              f"loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f} "
              f"(mean of last 5: {sum(result.losses[-5:]) / len(result.losses[-5:]):.3f})")

        figures = {}
        for name, spec in (("base", f"hf:{args.model}"), ("trained", f"hf:{config.out}")):
            figures[name] = evaluate_model(spec, test_file, work / f"eval_{name}",
                                           args.max_tokens)
        b, t, g = figures["base"], figures["trained"], uniform_guess(test)
        print(f"\nProcessBench-style evaluation on {b['n']} injected GSM8K test records "
              f"(greedy, {args.max_tokens} tokens max; 'uniform guess' = the expected score "
              "of picking -1..n-1 at random):")
        print(f"{'':<22}{'base':>12}{'trained':>12}{'uniform guess':>16}")
        for key, label in (("acc_err", "acc_err %"), ("acc_cor", "acc_cor %"), ("f1", "F1")):
            print(f"{label:<22}{b[key]:>12.1f}{t[key]:>12.1f}{g[key]:>16.1f}")
        # judgement, apart from the index: a critic that tells nothing flags both alike
        for key, label in (("flags_wrong", "flags wrong sol. %"),
                           ("flags_right", "flags right sol. %")):
            print(f"{label:<22}{b[key]:>12.1f}{t[key]:>12.1f}")
        key = "parse_failure_rate"
        print(f"{'parse failures':<22}{b[key]:>12.2f}{t[key]:>12.2f}")
        for key in ("unparsed", "-1", "a step"):
            print(f"{'predicted ' + key:<22}{b['predicted'].get(key, 0):>12}"
                  f"{t['predicted'].get(key, 0):>12}")
        print(f"{'eval minutes':<22}{b['seconds'] / 60:>12.1f}{t['seconds'] / 60:>12.1f}")
        print(f"\nfirst base critique:    {json.dumps(b['sample'][:160])}")
        print(f"first trained critique: {json.dumps(t['sample'][:160])}")
        print(f"\nF1 {b['f1']:.1f} -> {t['f1']:.1f} ({t['f1'] - b['f1']:+.1f}) after "
              f"{result.steps} SFT steps ({result.seconds / 60:.1f} min); uniform guess "
              f"{g['f1']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
