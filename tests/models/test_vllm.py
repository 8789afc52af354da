"""The offline vLLM engine. The parameter mapping and output conversion are pure functions,
tested without vLLM; the engine itself runs only where vLLM and a CUDA GPU are present (and
``CRITICLAB_VLLM_MODEL`` names a model it can load offline)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from types import SimpleNamespace

import pytest

from criticlab.errors import ConfigError
from criticlab.models.base import GenerateConfig, Message
from criticlab.models.vllm import convert_logprobs, sampling_kwargs, to_generations


def test_sampling_kwargs_maps_every_parameter() -> None:
    config = GenerateConfig(n=4, temperature=0.7, top_p=0.9, seed=3, max_tokens=64,
                            stop=("\n\n",), logprobs=True, top_logprobs=5)
    assert sampling_kwargs(config) == {"n": 4, "temperature": 0.7, "top_p": 0.9, "seed": 3,
                                       "max_tokens": 64, "stop": ["\n\n"], "logprobs": 5}
    plain = sampling_kwargs(GenerateConfig(seed=None))
    assert plain["stop"] is None and plain["logprobs"] is None and plain["seed"] is None
    # logprobs of the sampled token only: vLLM's logprobs=0
    assert sampling_kwargs(GenerateConfig(logprobs=True))["logprobs"] == 0


def lp(logprob: float, rank: int, token: str) -> SimpleNamespace:
    return SimpleNamespace(logprob=logprob, rank=rank, decoded_token=token)


def test_outputs_convert_to_generations_with_usage_and_logprobs() -> None:
    # the sampled token 7 ranks 2nd at position 0; at position 1 it ranks 3rd, outside top-2
    positions = [{5: lp(-0.1, 1, "A"), 7: lp(-2.5, 2, "B")},
                 {1: lp(-0.2, 1, "x"), 2: lp(-0.9, 2, "y"), 9: lp(-3.0, 3, "z")}]
    sample = SimpleNamespace(text="Bz", token_ids=[7, 9], logprobs=positions,
                             finish_reason="length")
    other = SimpleNamespace(text="A", token_ids=[5], logprobs=positions[:1],
                            finish_reason="stop")
    out = SimpleNamespace(prompt_token_ids=list(range(12)), outputs=[sample, other])
    config = GenerateConfig(n=2, logprobs=True, top_logprobs=2)
    first, second = to_generations(out, config)
    assert (first.text, first.finish_reason, second.text) == ("Bz", "length", "A")
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.usage.calls) == \
        (12, 2, 1)
    assert (second.usage.prompt_tokens, second.usage.completion_tokens, second.usage.calls) == \
        (0, 1, 0)
    assert first.logprobs is not None
    assert [(t.token, t.logprob) for t in first.logprobs] == [("B", -2.5), ("z", -3.0)]
    assert first.logprobs[1].top == (("x", -0.2), ("y", -0.9))
    assert to_generations(out, GenerateConfig(n=2))[0].logprobs is None
    assert convert_logprobs([1], None, 3) is None


def test_a_missing_vllm_is_a_config_error_with_the_install_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from criticlab.models.vllm import VLLMModel

    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(ConfigError, match=r"pip install 'criticlab\[vllm\]'"):
        VLLMModel("any/model")


def _cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.slow
def test_the_engine_generates_on_a_gpu() -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed: pip install 'criticlab[vllm]'")
    if not _cuda():
        pytest.skip("no CUDA GPU: the offline vLLM engine needs one")
    model_name = os.environ.get("CRITICLAB_VLLM_MODEL")
    if not model_name:
        pytest.skip("set CRITICLAB_VLLM_MODEL to a small chat model vLLM can load offline "
                    "(a local path or a cached hub id)")
    from criticlab.models.vllm import VLLMModel

    model = VLLMModel(model_name, gpu_memory_utilization=0.5, max_model_len=2048)
    messages = [Message("user", "What is 2 + 3? Answer with a number.")]
    greedy = GenerateConfig(n=2, temperature=0.0, max_tokens=16, logprobs=True,
                            top_logprobs=3)
    a, b = asyncio.run(model.generate(messages, greedy))
    assert a.text and a.text == b.text  # greedy: both samples the same
    assert a.usage.prompt_tokens > 0 and a.usage.completion_tokens > 0 and a.usage.calls == 1
    assert b.usage.prompt_tokens == 0 and b.usage.calls == 0
    assert a.logprobs is not None and len(a.logprobs) == a.usage.completion_tokens
    assert all(len(t.top) <= 3 and t.logprob <= 0 for t in a.logprobs)
    seeded = GenerateConfig(n=3, temperature=1.0, seed=7, max_tokens=16)
    first = [g.text for g in asyncio.run(model.generate(messages, seeded))]
    assert first == [g.text for g in asyncio.run(model.generate(messages, seeded))]


@pytest.mark.parametrize("api", ["structured_outputs", "guided_decoding"])
def test_a_json_schema_becomes_vllms_structured_outputs(monkeypatch: pytest.MonkeyPatch,
                                                        api: str) -> None:
    """vLLM >= 0.11 takes StructuredOutputsParams(json=...), older ones
    GuidedDecodingParams(json=...); a vLLM with neither is one clear line."""
    class Params:
        def __init__(self, json: object) -> None:
            self.json = json

    name = "StructuredOutputsParams" if api == "structured_outputs" else "GuidedDecodingParams"
    module = SimpleNamespace(**{name: Params})
    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(sampling_params=module))
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", module)
    config = GenerateConfig(json_schema='{"type":"object","properties":{"a":{"enum":[1]}}}')
    kwargs = sampling_kwargs(config)
    assert kwargs[api].json == {"type": "object", "properties": {"a": {"enum": [1]}}}
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", SimpleNamespace())
    with pytest.raises(ConfigError, match="no structured outputs"):
        sampling_kwargs(config)
    assert "guided_decoding" not in sampling_kwargs(GenerateConfig())
