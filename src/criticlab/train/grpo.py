"""RL with rule-based critique rewards (Critique-RL stage I, RefCritic): GRPO through TRL's
GRPOTrainer on the ``prompt`` / ``gold_first_error`` / ``gold_verdict`` rows of
``criticlab label export --format rl``, scored by :mod:`criticlab.train.rewards`.

Rewards are named (:data:`REWARDS`) for the command line; Python callers may pass their own
callables, e.g. a :class:`criticlab.train.rewards.RefinementReward` for stage II.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
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
from criticlab.train.rewards import (
    first_error_reward,
    format_reward,
    shaped_reward,
    verdict_reward,
)

__all__ = ["REWARDS", "CriticGRPOConfig", "train_grpo"]

REWARDS: dict[str, Callable[..., list[float]]] = {
    "shaped": shaped_reward,
    "format": format_reward,
    "verdict": verdict_reward,
    "first_error": first_error_reward,
    "first_error_partial": functools.partial(first_error_reward, partial=True),
}


@dataclass(frozen=True)
class CriticGRPOConfig(TrainConfig):
    """``batch_size``: prompts per step, each sampled ``num_generations`` times (TRL counts
    completions: its batch is ``batch_size * num_generations``). ``rewards``: names in
    :data:`REWARDS`, summed with ``reward_weights`` (default 1 each). ``beta``: KL to the
    base (0 = none, and no reference model is kept)."""

    learning_rate: float = 5e-5
    num_generations: int = 4
    max_completion_length: int = 64
    temperature: float = 1.0
    beta: float = 0.0
    rewards: tuple[str, ...] = ("shaped",)
    reward_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.rewards, tuple):
            object.__setattr__(self, "rewards", tuple(self.rewards))
        for name in ("num_generations", "max_completion_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (2 if name == "num_generations" else 1):
                raise ConfigError(f"{name} must be a whole number >= "
                                  f"{2 if name == 'num_generations' else 1}, got {value!r}")
        unknown = [r for r in self.rewards if r not in REWARDS]
        if unknown or not self.rewards:
            raise ConfigError(f"unknown reward(s) {', '.join(map(repr, unknown)) or '(none)'}; "
                              f"use some of: {', '.join(REWARDS)}")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise ConfigError(f"{len(self.reward_weights)} reward weights for "
                              f"{len(self.rewards)} rewards")
        if not (self.temperature > 0 and math.isfinite(self.temperature)) or self.beta < 0:
            raise ConfigError("temperature must be > 0 and beta >= 0")


def _check(row: dict[str, Any]) -> str | None:
    if not (is_conversation(row["prompt"]) or isinstance(row["prompt"], str)):
        return "prompt: expected a string or a list of {role, content} messages"
    gold = row.get("gold_first_error")
    if gold is not None and (not isinstance(gold, int) or gold < -1):
        return f"gold_first_error: expected a step index or -1, got {gold!r}"
    if row.get("gold_verdict") not in (None, "correct", "incorrect"):
        return f"gold_verdict: expected 'correct' or 'incorrect', got {row['gold_verdict']!r}"
    if gold is None and row.get("gold_verdict") is None:
        return "gold_first_error / gold_verdict: a row needs at least one gold label"
    return None


def train_grpo(config: CriticGRPOConfig, *,
               reward_funcs: Sequence[Callable[..., Any]] | None = None,
               progress: Progress | None = None) -> TrainResult:
    """Train ``config.model`` with GRPO for ``config.max_steps`` steps and save it to
    ``config.out``. ``reward_funcs`` replaces the named ``config.rewards``. Every dataset
    column reaches the reward functions. The result's ``extra["reward"]`` is the mean reward
    of each step's samples."""
    started = time.monotonic()
    data = load_rows(config.data, ("prompt",), "rl", _check, keep_other_columns=True)
    trl = need_trl()
    funcs: list[Any] = list(reward_funcs) if reward_funcs is not None else [
        REWARDS[r] for r in config.rewards]
    weights = config.reward_weights
    if weights is not None and len(weights) != len(funcs):
        raise ConfigError(f"{len(weights)} reward weights for {len(funcs)} reward functions")
    model, tok = load_model(config)
    args = trl_args(
        trl.GRPOConfig, config, num_generations=config.num_generations,
        max_completion_length=config.max_completion_length, temperature=config.temperature,
        beta=config.beta, reward_weights=list(weights) if weights else None,
        per_device_train_batch_size=config.batch_size * config.num_generations,
    )
    trainer = trl.GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=data,
                          processing_class=tok)
    rewards: list[float] = []
    trainer.add_callback(_RewardLog(rewards))
    return run(trainer, config, "grpo", tok, progress, started, {"reward": rewards})


def _RewardLog(rewards: list[float]) -> Any:
    from transformers import TrainerCallback

    class RewardLog(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kw: Any) -> None:
            if logs and "reward" in logs:
                rewards.append(float(logs["reward"]))

    return RewardLog()
