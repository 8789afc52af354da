"""Step-label (PRM) training on the ``prompt`` / ``completions`` / ``labels`` rows of
``criticlab label export --format stepwise`` (TRL's stepwise-supervision format).

TRL 1.16 no longer ships a PRMTrainer, so criticlab has its own small one rather than pin an
old TRL. It follows Math-Shepherd (Wang et al. 2024, "Math-Shepherd: Verify and Reinforce LLMs
Step-by-step without Human Annotations"): the causal LM itself scores steps. The input is the
question, a newline, then each step followed by ``step_separator``; at the last token of each
separator the model's logits for two label tokens (``good_token``, ``bad_token``) are a two-way
classifier, trained by cross-entropy at those positions only (:func:`step_loss`); every other
position is ignored. The model stays a causal LM, so ``load_causal_lm(out)`` reloads it and
:func:`step_scores` reads P(good) per step from it (through
:func:`criticlab.models.prm.score_positions`, as the ``prm:DIR`` engine does). The optimizer
loop is transformers' ``Trainer``; only the loss and the batching are ours.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from criticlab.errors import ConfigError
from criticlab.train.common import (
    Progress,
    TrainConfig,
    TrainResult,
    load_model,
    load_rows,
    run,
    trl_args,
)

__all__ = ["PRMConfig", "encode_steps", "step_loss", "step_scores", "train_prm"]

IGNORE = -100
COLUMNS = ("prompt", "completions", "labels")


@dataclass(frozen=True)
class PRMConfig(TrainConfig):
    """``step_separator`` ends every step; ``good_token``/``bad_token`` must each be one
    token of the model's tokenizer."""

    step_separator: str = "\n"
    good_token: str = "+"
    bad_token: str = "-"


def step_loss(logits: Any, labels: Any, good_id: int, bad_id: int) -> Any:
    """Mean cross-entropy of the two-way classifier (bad, good) read from ``logits``
    ``[batch, seq, vocab]`` at the positions where ``labels`` ``[batch, seq]`` is 1 (good)
    or 0 (bad); positions labelled :data:`IGNORE` do not count."""
    import torch.nn.functional as F

    mask = labels != IGNORE
    pair = logits[mask][:, [bad_id, good_id]].float()
    return F.cross_entropy(pair, labels[mask].long())


def label_ids(tokenizer: Any, good_token: str, bad_token: str) -> tuple[int, int]:
    ids = []
    for tok in (good_token, bad_token):
        enc = tokenizer.encode(tok, add_special_tokens=False)
        if len(enc) != 1:
            raise ConfigError(f"label token {tok!r} is {len(enc)} tokens for this tokenizer; "
                              "choose a single-token good/bad token")
        ids.append(enc[0])
    if ids[0] == ids[1]:
        raise ConfigError("good_token and bad_token must differ")
    return ids[0], ids[1]


def encode_steps(tokenizer: Any, prompt: str, steps: Sequence[str], separator: str,
                 labels: Sequence[bool] | None = None, max_length: int | None = None
                 ) -> tuple[list[int], list[int]]:
    """Token ids of ``prompt`` + steps, and a label per position: 1/0 at the last token of
    each step's separator (-1 when ``labels`` is not given), :data:`IGNORE` elsewhere. Steps
    cut off by ``max_length`` lose their labels."""
    ids = list(tokenizer.encode(prompt.rstrip("\n") + "\n", add_special_tokens=False))
    out = [IGNORE] * len(ids)
    sep = tokenizer.encode(separator, add_special_tokens=False)
    for i, step in enumerate(steps):
        piece = tokenizer.encode(step, add_special_tokens=False) + sep
        ids += piece
        mark = -1 if labels is None else int(bool(labels[i]))
        out += [IGNORE] * (len(piece) - 1) + [mark]
    if max_length is not None:
        ids, out = ids[:max_length], out[:max_length]
    return ids, out


def _check(row: dict[str, Any]) -> str | None:
    steps, labels = row["completions"], row["labels"]
    if not isinstance(row["prompt"], str):
        return "prompt: expected the problem as a string"
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps) or not steps:
        return "completions: expected a non-empty list of step strings"
    if not isinstance(labels, list) or not all(isinstance(x, bool) for x in labels):
        return "labels: expected a list of true/false, one per step"
    if len(labels) != len(steps):
        return f"labels: {len(labels)} labels for {len(steps)} steps"
    return None


def _collate(pad_id: int) -> Any:
    import torch

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = [b["input_ids"] + [pad_id] * (width - len(b["input_ids"])) for b in batch]
        mask = [[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch]
        labels = [b["step_labels"] + [IGNORE] * (width - len(b["step_labels"])) for b in batch]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
                "step_labels": torch.tensor(labels)}

    return collate


def _trainer_class() -> Any:
    from transformers import Trainer

    class StepTrainer(Trainer):
        def __init__(self, *args: Any, good_id: int, bad_id: int, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.good_id, self.bad_id = good_id, bad_id

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            labels = inputs.pop("step_labels")
            outputs = model(**inputs)
            loss = step_loss(outputs.logits, labels, self.good_id, self.bad_id)
            return (loss, outputs) if return_outputs else loss

    return StepTrainer


def train_prm(config: PRMConfig, *, progress: Progress | None = None) -> TrainResult:
    """Train ``config.model`` to score steps for ``config.max_steps`` steps and save it to
    ``config.out``. Rows whose every label falls beyond ``max_length`` are dropped."""
    started = time.monotonic()
    data = load_rows(config.data, COLUMNS, "stepwise", _check)
    from transformers import TrainingArguments
    model, tok = load_model(config)
    good_id, bad_id = label_ids(tok, config.good_token, config.bad_token)
    rows = []
    for row in data:
        ids, labels = encode_steps(tok, row["prompt"], row["completions"],
                                   config.step_separator, row["labels"], config.max_length)
        if any(x != IGNORE for x in labels):
            rows.append({"input_ids": ids, "step_labels": labels})
    if not rows:
        raise ConfigError(f"{config.data}: no step label fits in max_length={config.max_length}")
    args = trl_args(TrainingArguments, config, remove_unused_columns=False)
    trainer = _trainer_class()(model=model, args=args, train_dataset=rows,
                               data_collator=_collate(tok.pad_token_id),
                               good_id=good_id, bad_id=bad_id)
    return run(trainer, config, "prm", tok, progress, started,
               {"step_separator": config.step_separator, "good_token": config.good_token,
                "bad_token": config.bad_token})


def step_scores(model: Any, tokenizer: Any, prompt: str, steps: Sequence[str], *,
                separator: str = "\n", good_token: str = "+", bad_token: str = "-"
                ) -> list[float]:
    """P(good) of each step from a model trained by :func:`train_prm` with the same
    separator and label tokens (its ``criticlab_train.json`` records them): the input is
    encoded as in training (:func:`encode_steps`) and scored by
    :func:`criticlab.models.prm.score_positions`, the computation the ``prm:DIR`` engine
    uses."""
    from criticlab.models.prm import score_positions

    good_id, bad_id = label_ids(tokenizer, good_token, bad_token)
    ids, marks = encode_steps(tokenizer, prompt, steps, separator)
    where = [i for i, m in enumerate(marks) if m != IGNORE]
    return score_positions(model, ids, where, label_ids=(good_id, bad_id))
