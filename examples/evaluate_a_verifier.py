"""Evaluate a critic on ProcessBench from Python: the arithmetic verifier (no model) on the
GSM8K subset, read from $CRITICLAB_DATA (a folder with processbench/gsm8k.json), else from
the Hugging Face hub. The run directory can be rendered with `criticlab report DIR`.

    CRITICLAB_DATA=../shared/data python examples/evaluate_a_verifier.py [RUN_DIR]
"""

import sys
import tempfile
from pathlib import Path

from criticlab.evaluate import EvalConfig, evaluate

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "run"
run = evaluate(EvalConfig(benchmark="processbench:gsm8k", out=out, critic="arithmetic"))
pb = run.metrics["processbench"]["gsm8k"]
print(f"{pb['n']} items: acc_err {pb['acc_err']:.1f}  acc_cor {pb['acc_cor']:.1f}  "
      f"F1 {pb['f1']:.1f}")
missed = next(r for r in run.results
              if r.example.gold and r.example.gold.first_error is not None
              and r.critique and r.critique.first_error is None)
print(f"first miss: {missed.example.problem.id} (gold error at paragraph "
      f"{missed.example.gold.first_error}; the verifier found no wrong arithmetic)")
print(f"run directory: {out}")
