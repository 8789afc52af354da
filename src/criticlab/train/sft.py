"""Critique fine-tuning (SFT; DeepCritic stage 1, CFT): (problem, solution) -> critique
text, on the ``messages`` rows of ``criticlab label export --format sft``, with TRL's
SFTTrainer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from criticlab.train.common import (
    Progress,
    TrainConfig,
    TrainResult,
    is_conversation,
    load_model,
    load_rows,
    need_trl,
    run,
    trl_args,
)

__all__ = ["CriticSFTConfig", "train_sft"]


@dataclass(frozen=True)
class CriticSFTConfig(TrainConfig):
    """``completion_only``: the loss covers the critique (the last, assistant message) only,
    not the prompt: each row is handed to TRL as ``prompt`` (every message but the last)
    and ``completion`` (the last)."""

    completion_only: bool = True


def _check(row: dict[str, Any]) -> str | None:
    msgs = row["messages"]
    if not is_conversation(msgs) or len(msgs) < 2:
        return "messages: expected a list of at least two {role, content} messages"
    if msgs[-1]["role"] != "assistant":
        return "messages: the last message must be the assistant's critique"
    return None


def _split(row: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}


def train_sft(config: CriticSFTConfig, *, progress: Progress | None = None) -> TrainResult:
    """Fine-tune ``config.model`` on the rows in ``config.data`` for ``config.max_steps``
    optimizer steps and save it to ``config.out`` (see :func:`criticlab.train.common.save`).
    Does not evaluate the result."""
    started = time.monotonic()
    data = load_rows(config.data, ("messages",), "sft", _check)
    trl = need_trl()
    if config.completion_only:
        data = data.map(_split, remove_columns=["messages"])
    model, tok = load_model(config)
    args = trl_args(trl.SFTConfig, config, max_length=config.max_length, packing=False,
                    completion_only_loss=config.completion_only)
    trainer = trl.SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    return run(trainer, config, "sft", tok, progress, started)
