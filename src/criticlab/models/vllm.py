"""The offline vLLM engine (``vllm.LLM``) on this machine's GPUs.

vLLM is imported when a :class:`VLLMModel` is built, never at import time; without it the
constructor raises ``ConfigError`` with the install line. Requests run one at a time in a
worker thread (the event loop stays free); the ``n`` samples of a request are one vLLM
request, so they share the prompt's KV cache, and automatic prefix caching
(``enable_prefix_caching``) shares it across requests too (the prefixes of Monte Carlo
rollouts, a critic's fixed instructions).

For throughput across many items, run several workers (:mod:`criticlab.scale`) or serve the
model with ``vllm serve`` and use ``openai:MODEL`` with ``--base-url``, which batches
concurrent requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from criticlab.errors import ConfigError, ModelError
from criticlab.models.base import GenerateConfig, Generation, Message, TokenLogprob
from criticlab.types import Usage

INSTALL_HINT = "pip install 'criticlab[vllm]'"


def sampling_kwargs(config: GenerateConfig) -> dict[str, Any]:
    """The ``vllm.SamplingParams`` arguments of ``config``: ``logprobs`` is the number of
    top alternatives per token (0: the sampled token's only), ``None`` when not asked; a JSON
    schema becomes vLLM's structured outputs (``structured_outputs``, or ``guided_decoding``
    before vLLM 0.11)."""
    kwargs: dict[str, Any] = {
        "n": config.n,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "seed": config.seed,
        "max_tokens": config.max_tokens,
        "stop": list(config.stop) or None,
        "logprobs": config.top_logprobs if config.logprobs else None,
    }
    if config.json_schema is not None:
        kwargs.update(_structured(config.schema()))
    return kwargs


def _structured(schema: Any) -> dict[str, Any]:
    try:
        from vllm.sampling_params import StructuredOutputsParams  # vLLM >= 0.11
    except ImportError:
        try:
            from vllm.sampling_params import GuidedDecodingParams
        except ImportError as e:
            raise ConfigError("this vLLM has no structured outputs (--structured): "
                              "upgrade vLLM") from e
        return {"guided_decoding": GuidedDecodingParams(json=schema)}
    return {"structured_outputs": StructuredOutputsParams(json=schema)}


def convert_logprobs(token_ids: Sequence[int], logprobs: Sequence[Mapping[int, Any]] | None,
                     top: int) -> tuple[TokenLogprob, ...] | None:
    """vLLM's per-position ``{token id: Logprob(logprob, rank, decoded_token)}`` as
    criticlab's :class:`TokenLogprob`: the sampled token, and the ``top`` best by rank."""
    if logprobs is None:
        return None
    out = []
    for tid, position in zip(token_ids, logprobs, strict=False):
        chosen = position[tid]
        best = sorted((lp for lp in position.values() if lp.rank is not None and lp.rank <= top),
                      key=lambda lp: lp.rank)
        out.append(TokenLogprob(
            token=chosen.decoded_token or "", logprob=float(chosen.logprob),
            top=tuple((lp.decoded_token or "", float(lp.logprob)) for lp in best[:top])))
    return tuple(out)


def to_generations(output: Any, config: GenerateConfig) -> list[Generation]:
    """One vLLM ``RequestOutput`` as ``n`` generations; the prompt's tokens and the one
    engine call are counted on the first sample, as the other engines do."""
    prompt = len(output.prompt_token_ids or ())
    gens = []
    for i, c in enumerate(output.outputs):
        gens.append(Generation(
            text=c.text,
            logprobs=convert_logprobs(c.token_ids, c.logprobs, config.top_logprobs)
            if config.logprobs else None,
            usage=Usage(prompt_tokens=prompt if i == 0 else 0,
                        completion_tokens=len(c.token_ids), calls=1 if i == 0 else 0),
            finish_reason=c.finish_reason,
        ))
    return gens


class VLLMModel:
    """A model loaded by vLLM's offline engine; chat requests use the model's chat template.
    ``name`` (part of every cache key) defaults to ``vllm:MODEL``. Does not batch
    concurrent requests: they wait for each other."""

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        enable_prefix_caching: bool = True,
        max_model_len: int | None = None,
        name: str | None = None,
    ) -> None:
        try:
            import vllm
        except ImportError as e:
            raise ConfigError(f"vllm is not installed: {INSTALL_HINT}") from e
        self.name = name or f"vllm:{model}"
        kwargs: dict[str, Any] = {
            "model": model,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "enable_prefix_caching": enable_prefix_caching,
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        try:
            self._llm = vllm.LLM(**kwargs)
        except Exception as e:  # no GPU, unknown model, out of memory: vLLM raises many types
            raise ConfigError(f"{self.name}: vLLM cannot load the model: {e}") from e
        self._sampling = vllm.SamplingParams
        self._lock = threading.Lock()

    async def generate(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]:
        return await asyncio.to_thread(self._generate_blocking, messages, config)

    def _generate_blocking(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]:
        params = self._sampling(**sampling_kwargs(config))
        with self._lock:
            try:
                (output,) = self._llm.chat([m.to_dict() for m in messages], params,
                                           use_tqdm=False)
            except ValueError as e:  # e.g. the prompt is longer than max_model_len
                raise ModelError(f"{self.name}: {e}", retryable=False) from e
        gens = to_generations(output, config)
        if len(gens) != config.n:
            raise ModelError(f"{self.name} returned {len(gens)} samples for n={config.n}")
        return gens
