"""``criticlab train sft|dpo|grpo|prm``: build a config, call the runner, print a summary.
Register with ``app.add_typer(train_app, name="train")``; bad input raises ``ConfigError``
/ ``InputError``, which the main command prints as one line with exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from criticlab.errors import ConfigError

train_app = typer.Typer(no_args_is_help=True,
                        help="Train a critic on exported rows (TRL: SFT, DPO, GRPO; PRM).")

DataOpt = Annotated[Path, typer.Option("--data", help="Exported rows: JSONL or a saved "
                                       "Dataset folder (criticlab label export).")]
ModelOpt = Annotated[str, typer.Option(
    "--model", help="Base model: embedded, a .gguf file, a checkpoint or adapter folder.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Where the trained model is saved.")]
StepsOpt = Annotated[int, typer.Option("--steps", help="Optimizer steps.")]
LoraOpt = Annotated[bool, typer.Option("--lora/--no-lora",
                                       help="Train a LoRA adapter (default) or every weight.")]
LrOpt = Annotated[float | None, typer.Option("--lr", help="Learning rate (default: per method).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Rows per step.")]
MaxLenOpt = Annotated[int, typer.Option("--max-length", help="Longest training sequence.")]
MergeOpt = Annotated[bool, typer.Option("--merge", help="Save LoRA merged into full weights.")]
SeedOpt = Annotated[int, typer.Option("--seed")]


def _common(data: Path, model: str, out: Path, steps: int, lora: bool, lr: float | None,
            batch_size: int, max_length: int, merge: bool, seed: int) -> dict[str, Any]:
    kw: dict[str, Any] = dict(data=data, out=out, model=model, max_steps=steps, lora=lora,
                              batch_size=batch_size, max_length=max_length, merge=merge,
                              seed=seed)
    if lr is not None:
        kw["learning_rate"] = lr
    return kw


def _report(result: Any) -> None:
    from criticlab.cli.common import err, out

    losses, per_step = result.losses, sorted(result.step_seconds)
    median = f", {per_step[len(per_step) // 2]:.1f}s a step" if per_step else ""
    out.print(f"{result.method}: {result.steps} steps in {result.seconds:.1f}s{median}; loss "
              f"{losses[0]:.4f} -> {losses[-1]:.4f}" if losses else f"{result.method}: no steps")
    if result.extra.get("reward"):
        r = result.extra["reward"]
        out.print(f"mean reward per step: {', '.join(f'{x:.3f}' for x in r)}")
    err.print(f"{result.trainable:,} of {result.total:,} parameters trained; saved to "
              f"{result.out} (reload with hf:{result.out})")


def _progress() -> Any:
    from criticlab.cli.common import err

    def show(step: int, total: int, loss: float | None) -> None:
        err.print(f"step {step}/{total} loss {loss:.4f}" if loss is not None else
                  f"step {step}/{total}")

    return show


@train_app.command("sft")
def sft_cmd(data: DataOpt, out: OutOpt, model: ModelOpt = "embedded", steps: StepsOpt = 10,
            lora: LoraOpt = True, lr: LrOpt = None, batch_size: BatchOpt = 2,
            max_length: MaxLenOpt = 1024, merge: MergeOpt = False, seed: SeedOpt = 0) -> None:
    """Critique fine-tuning on `messages` rows (export --format sft)."""
    from criticlab.train.sft import CriticSFTConfig, train_sft

    config = CriticSFTConfig(**_common(data, model, out, steps, lora, lr, batch_size,
                                       max_length, merge, seed))
    _report(train_sft(config, progress=_progress()))


@train_app.command("dpo")
def dpo_cmd(data: DataOpt, out: OutOpt, model: ModelOpt = "embedded", steps: StepsOpt = 10,
            lora: LoraOpt = True, lr: LrOpt = None, batch_size: BatchOpt = 2,
            max_length: MaxLenOpt = 1024, merge: MergeOpt = False, seed: SeedOpt = 0,
            beta: Annotated[float, typer.Option(help="DPO's KL strength.")] = 0.1) -> None:
    """DPO on `prompt/chosen/rejected` rows (export --format preference)."""
    from criticlab.train.dpo import CriticDPOConfig, train_dpo

    config = CriticDPOConfig(**_common(data, model, out, steps, lora, lr, batch_size,
                                       max_length, merge, seed), beta=beta)
    _report(train_dpo(config, progress=_progress()))


@train_app.command("grpo")
def grpo_cmd(
    data: DataOpt, out: OutOpt, model: ModelOpt = "embedded", steps: StepsOpt = 10,
    lora: LoraOpt = True, lr: LrOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Prompts per step.")] = 1,
    max_length: MaxLenOpt = 1024, merge: MergeOpt = False, seed: SeedOpt = 0,
    reward: Annotated[str, typer.Option(
        help="Comma-separated rewards: shaped, format, verdict, first_error, "
             "first_error_partial.")] = "shaped",
    num_generations: Annotated[int, typer.Option(help="Samples per prompt.")] = 4,
    max_completion_length: Annotated[int, typer.Option(help="Longest critique.")] = 64,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
) -> None:
    """GRPO with rule-based critique rewards on RL rows (export --format rl)."""
    from criticlab.train.grpo import CriticGRPOConfig, train_grpo

    names = tuple(r.strip() for r in reward.split(",") if r.strip())
    if not names:
        raise ConfigError("--reward names no reward")
    config = CriticGRPOConfig(**_common(data, model, out, steps, lora, lr, batch_size,
                                        max_length, merge, seed),
                              rewards=names, num_generations=num_generations,
                              max_completion_length=max_completion_length,
                              temperature=temperature)
    _report(train_grpo(config, progress=_progress()))


@train_app.command("prm")
def prm_cmd(data: DataOpt, out: OutOpt, model: ModelOpt = "embedded", steps: StepsOpt = 10,
            lora: LoraOpt = True, lr: LrOpt = None, batch_size: BatchOpt = 2,
            max_length: MaxLenOpt = 1024, merge: MergeOpt = False, seed: SeedOpt = 0,
            separator: Annotated[str, typer.Option(help="Ends every step.")] = "\n") -> None:
    """Step-label training on `prompt/completions/labels` rows (export --format stepwise)."""
    from criticlab.train.prm import PRMConfig, train_prm

    config = PRMConfig(**_common(data, model, out, steps, lora, lr, batch_size, max_length,
                                 merge, seed), step_separator=separator)
    _report(train_prm(config, progress=_progress()))
