"""Tiny datasets in TRL's formats and the embedded base model (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from criticlab.label.export import rl_rows, stepwise_rows
from criticlab.types import Example, Gold, Problem, Solution

EXAMPLES = [
    Example(Problem("a", "Tom has 3 bags of 4 apples. How many apples?", "12"),
            Solution(("3 * 4 = 13", "The answer is 13.")), Gold(0)),
    Example(Problem("b", "What is 2 + 2?", "4"),
            Solution(("2 + 2 = 4", "The answer is 4.")), Gold(None, None, True)),
]


def user(text):
    return [{"role": "user", "content": text}]


def assistant(text):
    return [{"role": "assistant", "content": text}]


Q1 = "Find the first wrong step. Step 0: 3 * 4 = 13. Step 1: so 13."
Q2 = "Find the first wrong step. Step 0: 2 + 2 = 4. Step 1: so 4."
ROWS = {
    "sft": [{"messages": user(Q1) + assistant("Step 0 is wrong: 3 * 4 = 12. \\boxed{0}")},
            {"messages": user(Q2) + assistant("Every step is right. \\boxed{-1}")}],
    "preference": [
        {"prompt": user(Q1), "chosen": assistant("\\boxed{0}"),
         "rejected": assistant("\\boxed{-1}")},
        {"prompt": user(Q2), "chosen": assistant("\\boxed{-1}"),
         "rejected": assistant("\\boxed{1}")}],
    "rl": rl_rows(EXAMPLES),
    "stepwise": stepwise_rows(EXAMPLES),
}


def write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def rows_file(tmp_path):
    def make(fmt: str) -> Path:
        return write(tmp_path / f"{fmt}.jsonl", ROWS[fmt])
    return make


@pytest.fixture(scope="session")
def base_model():
    """Makes sure the embedded checkpoint is dequantised (once) before a trainer loads it."""
    from criticlab.errors import ConfigError

    try:
        from criticlab.models.hf import load_causal_lm

        return load_causal_lm("embedded")
    except (ConfigError, ImportError) as e:
        pytest.skip(f"the embedded model cannot be loaded through transformers: {e}")
