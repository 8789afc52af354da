"""What every trainer shares: the config fields, reading exported rows, loading the base
model (with LoRA as an option), TRL's arguments, running a trainer quietly and saving the
result so that ``load_causal_lm(out)`` reloads it.

A saved run directory holds either a LoRA adapter (``adapter_config.json``,
``adapter_model.safetensors``) or, with ``merge=True``, the merged full weights; the tokenizer;
and ``criticlab_train.json``: the base model spec, the method, the config and the losses.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from criticlab.errors import ConfigError, InputError

log = logging.getLogger(__name__)

TRAIN_NOTE = "criticlab_train.json"
Progress = Callable[[int, int, float | None], None]
"""``progress(step, max_steps, loss)`` after every optimizer step."""


@dataclass(frozen=True)
class TrainConfig:
    """Fields every trainer takes. ``data``: exported JSONL (or a saved ``Dataset``
    directory); ``model``: a spec of :func:`criticlab.models.hf.load_causal_lm` ("embedded",
    a local directory, a hub id); ``lora``: train a LoRA adapter instead of every weight;
    ``merge``: save LoRA merged into full weights instead of the adapter alone."""

    data: Path
    out: Path
    model: str = "embedded"
    max_steps: int = 10
    learning_rate: float = 2e-4
    batch_size: int = 2
    lora: bool = True
    lora_r: int = 8
    lora_alpha: int = 16
    merge: bool = False
    max_length: int = 1024
    seed: int = 0
    threads: int | None = None
    """CPU threads for torch; default: what loading the model set (``CRITICLAB_THREADS``,
    else 1: on a busy 2-core machine 2 threads made a training step 4x slower than 1)."""

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "lora_r", "lora_alpha", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        if not (isinstance(self.learning_rate, int | float) and
                0 < self.learning_rate < 1 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"learning_rate must be in (0, 1), got {self.learning_rate!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"threads must be a whole number >= 1, got {self.threads!r}")
        if self.merge and not self.lora:
            raise ConfigError("merge only applies to LoRA training (drop --merge or use --lora)")

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass
class TrainResult:
    """``losses``: the training loss at every step; ``step_seconds``: the wall time of every
    optimizer step (generation included for GRPO); ``seconds``: the whole run, loading and
    saving included; ``trainable``: parameters trained."""

    out: Path
    method: str
    steps: int
    losses: list[float]
    seconds: float
    trainable: int
    total: int
    step_seconds: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


# -- data ---------------------------------------------------------------------------------------

def load_rows(path: Path, columns: Sequence[str], fmt: str,
              check: Callable[[dict[str, Any]], str | None] | None = None,
              keep_other_columns: bool = False) -> Any:
    """A ``datasets.Dataset`` of exported rows, every row checked first for ``columns``
    (and by ``check``, which returns a problem or ``None``) so a bad line is reported as
    ``file:line: field: problem``, not as a traceback from inside TRL. Other columns are
    dropped unless ``keep_other_columns`` (GRPO hands them to the reward functions)."""
    path = Path(path)
    if path.is_dir():
        datasets = _need("datasets")
        try:
            ds = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as e:
            raise InputError(f"not a saved dataset ({e})", path=str(path)) from e
        rows: list[tuple[int, dict[str, Any]]] = list(enumerate(ds, start=1))
    elif path.is_file():
        rows = _read_jsonl(path)
        ds = None
    else:
        raise InputError("no such file", path=str(path))
    if not rows:
        raise InputError(f"no rows (expected TRL {fmt} rows)", path=str(path))
    for i, row in rows:
        for col in columns:
            if row.get(col) is None:  # a saved Dataset fills a missing value with None
                raise InputError(f"missing (a {fmt} row has {', '.join(columns)}; "
                                 f"see `criticlab label export --format {fmt}`)",
                                 path=str(path), line=i, field=col)
        problem = check(row) if check else None
        if problem:
            raise InputError(problem, path=str(path), line=i)
    if ds is None:
        ds = _need("datasets").load_dataset("json", data_files=str(path), split="train")
    return ds if keep_other_columns else ds.select_columns(list(columns))


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of every non-blank line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read: {e}", path=str(path)) from e
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"not JSON ({e.msg})", path=str(path), line=i) from e
        if not isinstance(row, dict):
            raise InputError("expected JSON Lines, one JSON object per line", path=str(path),
                             line=i)
        rows.append((i, row))
    return rows


def is_conversation(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str)
        and isinstance(m.get("content"), str) for m in value)


# -- model --------------------------------------------------------------------------------------

def load_model(config: TrainConfig) -> tuple[Any, Any]:
    """The base model and its tokenizer, wrapped in a LoRA adapter when ``config.lora``.
    A base that is itself an adapter (a model trained before) is merged into its weights
    first, so training goes on from it."""
    from criticlab.models.hf import load_causal_lm

    model, tok = load_causal_lm(config.model)
    if _is_peft(model):
        model = model.merge_and_unload()
    if not config.lora:
        model.requires_grad_(True)
    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if config.lora:
        peft = _need("peft")
        lora = peft.LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                               target_modules="all-linear", task_type="CAUSAL_LM")
        model = peft.get_peft_model(model, lora)
    return model, tok


def count_params(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def trl_args(cls: Any, config: TrainConfig, **extra: Any) -> Any:
    """TRL's config class ``cls`` filled from ``config``: no checkpoints, no reports, a log
    every step, full precision on CPU, no gradient checkpointing (small models)."""
    import torch

    cuda = torch.cuda.is_available()
    args: dict[str, Any] = dict(
        output_dir=str(config.out), max_steps=config.max_steps,
        learning_rate=config.learning_rate, per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=1, logging_steps=1, save_strategy="no", report_to="none",
        seed=config.seed, bf16=cuda and torch.cuda.is_bf16_supported(), fp16=False,
        activation_checkpointing=False, disable_tqdm=True, dataloader_num_workers=0,
        dataloader_pin_memory=cuda)
    return cls(**{**args, **extra})


def run(trainer: Any, config: TrainConfig, method: str, tokenizer: Any,
        progress: Progress | None = None, started: float | None = None,
        extra: dict[str, Any] | None = None) -> TrainResult:
    """Train quietly (library code never prints: TRL's console callbacks are removed),
    recording the loss of every step, then save to ``config.out``."""
    from transformers import PrinterCallback, ProgressCallback, TrainerCallback

    started = time.monotonic() if started is None else started
    losses: list[float] = []
    step_seconds: list[float] = []
    step_start = [0.0]

    class Record(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            step_start[0] = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            step_seconds.append(time.monotonic() - step_start[0])

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kw: Any) -> None:
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
                if progress:
                    progress(state.global_step, config.max_steps, losses[-1])

    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    trainer.add_callback(Record())
    trainer.train()
    model = trainer.model
    trainable, total = count_params(model)
    steps = int(trainer.state.global_step)
    save(model, tokenizer, config, method,
         {"steps": steps, "losses": losses, "step_seconds": step_seconds, **(extra or {})})
    result = TrainResult(Path(config.out), method, steps, losses,
                         time.monotonic() - started, trainable, total, step_seconds,
                         extra or {})
    log.info("%s: %d steps in %.1fs, last loss %s, saved to %s", method, steps, result.seconds,
             losses[-1] if losses else None, config.out)
    return result


def save(model: Any, tokenizer: Any, config: TrainConfig, method: str,
         note: dict[str, Any]) -> None:
    """The adapter (or full weights: with ``merge``, without LoRA, or when the base is
    itself an adapter folder) and the tokenizer in ``config.out``, with a note of the base
    model spec."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    # An adapter on a base that is an adapter would not reload as one model: merge then.
    merge = config.merge or (Path(config.model) / "adapter_config.json").is_file()
    if config.lora and merge:
        model = model.merge_and_unload()
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    adapter = config.lora and not merge
    if adapter:
        _point_adapter_at(out, config.model)
    body = {"base": config.model, "method": method, "adapter": adapter,
            "config": config.to_dict(), **note}
    (out / TRAIN_NOTE).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def _point_adapter_at(out: Path, spec: str) -> None:
    """peft records the base as the folder it was loaded from (for "embedded", a cache
    folder); record the spec instead so the adapter reloads wherever the spec resolves."""
    path = out / "adapter_config.json"
    body = json.loads(path.read_text(encoding="utf-8"))
    local = Path(spec).expanduser()
    body["base_model_name_or_path"] = str(local.resolve()) if local.exists() else spec
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def _is_peft(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def need_trl() -> Any:
    return _need("trl")


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"training needs {module}: pip install 'criticlab[train]'") from e
