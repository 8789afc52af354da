"""DPO on critique pairs ranked by a rule-based reward (Critic-V): the ``prompt`` /
``chosen`` / ``rejected`` rows of ``criticlab label export --format preference``, with TRL's
DPOTrainer."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from criticlab.errors import ConfigError
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

__all__ = ["CriticDPOConfig", "train_dpo"]

COLUMNS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class CriticDPOConfig(TrainConfig):
    """``beta``: DPO's KL strength. The reference model is the base itself: with LoRA the
    adapter switched off, without LoRA a second frozen copy."""

    learning_rate: float = 5e-5
    beta: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.beta, int | float) and self.beta > 0 and math.isfinite(self.beta)):
            raise ConfigError(f"beta must be > 0, got {self.beta!r}")


def _check(row: dict[str, Any]) -> str | None:
    kinds = {is_conversation(row[c]) for c in COLUMNS}
    strings = all(isinstance(row[c], str) for c in COLUMNS)
    if not strings and kinds != {True}:
        return ("prompt/chosen/rejected: expected three strings or three lists of "
                "{role, content} messages")
    if row["chosen"] == row["rejected"]:
        return "chosen and rejected are the same"
    return None


def train_dpo(config: CriticDPOConfig, *, progress: Progress | None = None) -> TrainResult:
    """Train ``config.model`` with DPO on ``config.data`` for ``config.max_steps`` steps and
    save it to ``config.out``. The loss reported is TRL's sigmoid DPO loss."""
    started = time.monotonic()
    data = load_rows(config.data, COLUMNS, "preference", _check)
    trl = need_trl()
    model, tok = load_model(config)
    ref = None
    if not config.lora:
        from criticlab.models.hf import load_causal_lm

        ref, _ = load_causal_lm(config.model)
    args = trl_args(trl.DPOConfig, config, beta=config.beta, max_length=config.max_length)
    trainer = trl.DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=data,
                         processing_class=tok)
    return run(trainer, config, "dpo", tok, progress, started)
