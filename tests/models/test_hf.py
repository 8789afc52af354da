"""The transformers engine, for real: the embedded GGUF dequantised once into a temporary
cache (``CRITICLAB_CACHE``), loaded once for the module."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from pathlib import Path

import pytest

from criticlab.errors import ConfigError
from criticlab.models.base import GenerateConfig, Message

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from criticlab.models.hf import (  # noqa: E402
    HFModel,
    ensure_gguf_checkpoint,
    load_causal_lm,
)
from criticlab.models.hf_load import gguf_cache_dir  # noqa: E402
from criticlab.models.llamacpp import embedded_model_path  # noqa: E402

MSGS = [Message("user", "What is 2 + 3? Answer with a number.")]


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory: pytest.TempPathFactory, embedded_path: Path):  # type: ignore[no-untyped-def]
    """CRITICLAB_CACHE pointed at a fresh folder for the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRITICLAB_CACHE", str(tmp_path_factory.mktemp("hf-cache")))
        yield Path(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def loaded(hf_cache):  # type: ignore[no-untyped-def]
    return load_causal_lm("embedded")


@pytest.fixture(scope="module")
def hf_model(loaded) -> HFModel:  # type: ignore[no-untyped-def]
    model, tokenizer = loaded
    return HFModel.from_loaded(model, tokenizer, "hf:embedded")


# --- loading -----------------------------------------------------------------------------


@pytest.mark.slow
def test_gguf_is_dequantised_once_into_the_cache(loaded, embedded_path):
    model, tokenizer = loaded
    folder = gguf_cache_dir(embedded_path)
    assert folder.name == f"{embedded_path.stem}-{embedded_path.stat().st_size}"
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert json.loads((folder / "criticlab_source.json").read_text())["gguf"] == str(
        embedded_path)
    assert Path(model.config.name_or_path) == folder  # loaded from the cache, not the GGUF
    assert model.dtype == torch.float32 and not getattr(model, "is_quantized", False)
    assert tokenizer.chat_template and model.config.vocab_size == 49152
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_gguf_checkpoint(embedded_path) == folder  # second time: nothing written
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp left


@pytest.mark.slow
def test_lora_adapter_loads_onto_its_embedded_base(loaded, tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model

    base, tokenizer = loaded
    peft_model = get_peft_model(copy.deepcopy(base), LoraConfig(
        r=2, target_modules=["q_proj"], lora_alpha=4, task_type="CAUSAL_LM"))
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    peft_model.save_pretrained(tmp_path / "adapter")
    config_path = tmp_path / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = "embedded"  # portable: resolved to the shipped GGUF
    config_path.write_text(json.dumps(config))

    ids = tokenizer("2 + 3 =", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want = peft_model.eval()(input_ids=ids).logits
        base_logits = base(input_ids=ids).logits
    model, _ = load_causal_lm(tmp_path / "adapter")
    assert type(model).__name__.startswith("Peft")
    with torch.no_grad():
        got = model(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-4)
    assert not torch.allclose(got, base_logits, atol=1e-3)  # the adapter does something

    # the same adapter named explicitly, on a base given by the relative path of the GGUF
    gguf = embedded_model_path()
    monkeypatch.chdir(gguf.parent)
    model2, _ = load_causal_lm(gguf.name, adapter=tmp_path / "adapter")
    with torch.no_grad():
        assert torch.allclose(model2(input_ids=ids).logits, want, atol=1e-4)


def test_missing_engine_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ConfigError, match=r"pip install 'criticlab\[hf\]'"):
        load_causal_lm("embedded")


def test_unreachable_hub_name_is_a_config_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="local_files_only") as e:
        load_causal_lm("nobody-here/no-such-model")
    assert "HF_HUB_OFFLINE" in str(e.value)


@pytest.mark.parametrize(("spec", "message"), [
    ("missing.gguf", "no such GGUF file"),
    ("./no/such/folder", "no such checkpoint folder"),
])
def test_bad_specs_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        load_causal_lm(spec)


def test_folder_without_a_checkpoint_and_bad_dtype(tmp_path):
    with pytest.raises(ConfigError, match="not a model checkpoint"):
        load_causal_lm(tmp_path)
    with pytest.raises(ConfigError, match="unknown dtype"):
        load_causal_lm(tmp_path, dtype="float8")


def test_thread_count_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CRITICLAB_THREADS", "2")
    before = torch.get_num_threads()
    try:
        with pytest.raises(ConfigError):
            load_causal_lm(tmp_path)  # threads are set before the spec is looked at
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# --- generation --------------------------------------------------------------------------


@pytest.mark.slow
async def test_greedy_matches_transformers_generate(hf_model):
    (g,) = await hf_model.generate(MSGS, GenerateConfig(max_tokens=12))
    assert g.text.strip() and g.finish_reason in ("stop", "length")
    assert g.usage.calls == 1 and 0 < g.usage.completion_tokens <= 12
    tok = hf_model.tokenizer
    enc = tok.apply_chat_template([m.to_dict() for m in MSGS], add_generation_prompt=True,
                                  return_dict=True, return_tensors="pt")
    assert g.usage.prompt_tokens == enc["input_ids"].shape[1] > 11  # the chat template
    out = hf_model.model.generate(**enc, max_new_tokens=12, do_sample=False)
    assert g.text == tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    (again,) = await hf_model.generate(MSGS, GenerateConfig(max_tokens=12))
    assert again.text == g.text


@pytest.mark.slow
async def test_seeded_samples_are_reproducible_per_sample(hf_model):
    cfg = GenerateConfig(n=2, temperature=1.0, top_p=0.95, seed=5, max_tokens=8)
    a = await hf_model.generate(MSGS, cfg)
    b = await hf_model.generate(MSGS, cfg)
    assert [g.text for g in a] == [g.text for g in b] and len(a) == 2
    assert [g.usage.calls for g in a] == [1, 0] and a[1].usage.prompt_tokens == 0
    # sample i is drawn with seed + i, whatever n is
    (alone,) = await hf_model.generate(MSGS, GenerateConfig(
        temperature=1.0, top_p=0.95, seed=6, max_tokens=8))
    assert alone.text == a[1].text


@pytest.mark.slow
async def test_logprobs_with_top_list(hf_model):
    cfg = GenerateConfig(max_tokens=5, logprobs=True, top_logprobs=3)
    (g,) = await hf_model.generate(MSGS, cfg)
    assert g.logprobs is not None and len(g.logprobs) == g.usage.completion_tokens
    assert "".join(t.token for t in g.logprobs) == g.text
    for t in g.logprobs:
        assert len(t.top) == 3 and t.logprob <= 0
        assert [p for _, p in t.top] == sorted((p for _, p in t.top), reverse=True)
        assert t.top[0] == (t.token, t.logprob)  # greedy: the chosen token is the likeliest
        assert sum(2.718281828 ** p for _, p in t.top) <= 1.0 + 1e-6
    (plain,) = await hf_model.generate(MSGS, GenerateConfig(max_tokens=5))
    assert plain.logprobs is None and plain.text == g.text


@pytest.mark.slow
async def test_stop_string_truncates(hf_model):
    (full,) = await hf_model.generate(MSGS, GenerateConfig(max_tokens=12))
    stop = full.text[len(full.text) // 2:][:2]
    cut = full.text.find(stop)
    assert cut > 0
    cfg = GenerateConfig(max_tokens=12, stop=("never-there", stop), logprobs=True)
    (g,) = await hf_model.generate(MSGS, cfg)
    assert g.text == full.text[:cut] and g.finish_reason == "stop"
    assert g.logprobs is not None and len(g.logprobs) == g.usage.completion_tokens
    assert g.usage.completion_tokens <= full.usage.completion_tokens
    assert "".join(t.token for t in g.logprobs).startswith(g.text)


@pytest.mark.slow
async def test_concurrent_callers_share_one_model(hf_model):
    cfg = GenerateConfig(max_tokens=4)
    outs = await asyncio.gather(*(hf_model.generate(MSGS, cfg) for _ in range(3)))
    assert len({o[0].text for o in outs}) == 1


def test_a_json_schema_is_refused_in_one_line(hf_model: HFModel) -> None:
    """transformers decoding here cannot follow a schema: --structured on hf: is one line
    naming the engines that can, never free text passed off as structured."""
    config = GenerateConfig(max_tokens=8, json_schema='{"type":"object"}')
    with pytest.raises(ConfigError) as e:
        asyncio.run(hf_model.generate(MSGS, config))
    assert "hf:embedded" in str(e.value) and "embedded, llamacpp:PATH.gguf" in str(e.value)
    assert "\n" not in str(e.value)
