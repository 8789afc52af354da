"""Model spec strings (``embedded``, ``llamacpp:PATH.gguf``, ``openai:MODEL``, ``hf:SPEC``,
``prm:SPEC``, ``vllm:MODEL``, and the kinds plugins add), parsed in one place; and criticlab's
own engines.

:data:`MODEL_KINDS` (:mod:`criticlab.registry`) is the one table of spec kinds: the parser,
the error messages, the CLI's help and ``criticlab models`` all read it. The built-in kinds
are registered below with :func:`~criticlab.registry.register_model`, each with the builder
of its engine (which imports the engine's library only when it runs); a plugin registers its
own kinds the same way. :class:`ModelSpec` knows the name its engine will have (part of every
cache key) without loading anything; :func:`criticlab.registry.make_model` builds the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from criticlab.errors import ConfigError
from criticlab.models.base import LanguageModel
from criticlab.registry import MODEL_KINDS, ModelKind, ModelOptions, register_model

__all__ = ["MODEL_KINDS", "ModelKind", "ModelSpec", "usages"]


def usages() -> str:
    """Every spec form, comma-separated (for help texts and errors)."""
    return ", ".join(k.usage for k in MODEL_KINDS.values())


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: ``kind`` (a key of :data:`MODEL_KINDS`) and ``arg`` (the text after
    the first colon; empty for ``embedded``). ``str(spec)`` gives the spec string back."""

    kind: str
    arg: str = ""

    @classmethod
    def parse(cls, spec: str | ModelSpec) -> ModelSpec:
        """The spec ``spec`` names; a :class:`ConfigError` of one line if it names none."""
        if isinstance(spec, ModelSpec):
            return spec
        kind, _, arg = spec.strip().partition(":")
        known = MODEL_KINDS.get(kind)
        if known is None:
            raise MODEL_KINDS.failure(kind) or ConfigError(
                f"unknown model {spec!r}; use one of: {usages()}")
        if known.arg and not arg.strip():
            raise ConfigError(f"model {spec!r} lacks its argument; write {known.usage}")
        if not known.arg and arg:
            raise ConfigError(f"model {spec!r} takes no argument; write {known.usage}")
        return cls(kind, arg.strip())

    def __str__(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else self.kind

    @property
    def name(self) -> str:
        """The ``name`` the engine built from this spec will have (part of every cache key),
        known without loading it."""
        kind = MODEL_KINDS.get(self.kind)
        return kind.engine_name(self) if kind and kind.engine_name else str(self)

    @property
    def gpus(self) -> float:
        """GPUs a worker running this engine asks for by default (1 for vLLM, else none)."""
        return 1.0 if MODEL_KINDS[self.kind].gpu else 0.0


# -- the built-in engines, in the order `criticlab models` lists them --------------------------
def _embedded_name(spec: ModelSpec) -> str:
    from criticlab.models.llamacpp import EMBEDDED_FILE

    return f"embedded:{EMBEDDED_FILE}"


def _gguf(spec: ModelSpec, o: ModelOptions) -> LanguageModel:
    from criticlab.models.llamacpp import LlamaCppModel

    return LlamaCppModel(spec.arg or None, n_threads=o.threads)  # no path: the embedded file


register_model("embedded", arg=False, name=_embedded_name,
               what="SmolLM2-135M-Instruct (GGUF, in-process through llama-cpp-python)")(_gguf)
register_model("llamacpp", usage="llamacpp:PATH.gguf", arg=True,
               name=lambda spec: f"llamacpp:{Path(spec.arg).name}",
               what="any GGUF file, in-process through llama-cpp-python")(_gguf)


@register_model("openai", usage="openai:MODEL", arg=True,
                what="any OpenAI-compatible server (--base-url, OPENAI_API_KEY)")
def _openai(spec: ModelSpec, o: ModelOptions) -> LanguageModel:
    from criticlab.models.openai import OpenAIModel

    return OpenAIModel(spec.arg, base_url=o.base_url, timeout=o.timeout,
                       concurrency=o.concurrency)


@register_model("hf", usage="hf:PATH|embedded|HUB_ID", arg=True,
                what="transformers, in-process: a trained checkpoint or adapter folder, the "
                     "embedded model, or a hub name (pip install 'criticlab[hf]')")
def _hf(spec: ModelSpec, o: ModelOptions) -> LanguageModel:
    from criticlab.models.hf import HFModel

    return HFModel(spec.arg)


@register_model("prm", usage="prm:PATH|HUB_ID", arg=True,
                what="a process reward model through transformers, in-process: scores steps "
                     "(the prm:MODEL critic) and writes no text (pip install 'criticlab[hf]')")
def _prm(spec: ModelSpec, o: ModelOptions) -> LanguageModel:
    from criticlab.models.prm import PRMModel, trained_format

    # a checkpoint of `criticlab train prm` is read in the format it was trained on
    return PRMModel(spec.arg, name=str(spec), **trained_format(spec.arg))


@register_model("vllm", usage="vllm:MODEL", arg=True, gpu=True,
                what="an offline vLLM engine on this machine's GPUs "
                     "(pip install 'criticlab[vllm]')")
def _vllm(spec: ModelSpec, o: ModelOptions) -> LanguageModel:
    from criticlab.models.vllm import VLLMModel

    return VLLMModel(spec.arg, tensor_parallel_size=o.tensor_parallel_size)
