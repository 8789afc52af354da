"""Model spec strings (``embedded``, ``llamacpp:PATH.gguf``, ``openai:MODEL``, ``hf:SPEC``,
``vllm:MODEL``), parsed in one place.

:data:`MODEL_KINDS` is the one table of spec kinds: the parser, the error messages, the CLI's
help and ``criticlab models`` all read it. :class:`ModelSpec` knows the name its engine will
have (part of every cache key) without loading anything; :func:`criticlab.registry.make_model`
is the one function that builds the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from criticlab.errors import ConfigError


@dataclass(frozen=True)
class ModelKind:
    """One kind of model spec: ``usage`` is how it is written (``ARG`` in capitals), ``what``
    says what it runs; ``arg`` whether it takes an argument after the colon; ``gpu`` whether
    its engine needs a GPU."""

    kind: str
    usage: str
    what: str
    arg: bool
    gpu: bool = False


MODEL_KINDS: dict[str, ModelKind] = {k.kind: k for k in (
    ModelKind("embedded", "embedded",
              "SmolLM2-135M-Instruct (GGUF, in-process through llama-cpp-python)", arg=False),
    ModelKind("llamacpp", "llamacpp:PATH.gguf",
              "any GGUF file, in-process through llama-cpp-python", arg=True),
    ModelKind("openai", "openai:MODEL",
              "any OpenAI-compatible server (--base-url, OPENAI_API_KEY)", arg=True),
    ModelKind("hf", "hf:PATH|embedded|HUB_ID",
              "transformers, in-process: a trained checkpoint or adapter folder, the embedded "
              "model, or a hub name (pip install 'criticlab[hf]')", arg=True),
    ModelKind("vllm", "vllm:MODEL",
              "an offline vLLM engine on this machine's GPUs (pip install 'criticlab[vllm]')",
              arg=True, gpu=True),
)}


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
            raise ConfigError(f"unknown model {spec!r}; use one of: {usages()}")
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
        if self.kind == "embedded":
            from criticlab.models.llamacpp import EMBEDDED_FILE

            return f"embedded:{EMBEDDED_FILE}"
        if self.kind == "llamacpp":
            return f"llamacpp:{Path(self.arg).name}"
        return f"{self.kind}:{self.arg}"  # openai, hf, vllm: their engines' default names

    @property
    def gpus(self) -> float:
        """GPUs a worker running this engine asks for by default (1 for vLLM, else none)."""
        return 1.0 if MODEL_KINDS[self.kind].gpu else 0.0
