"""n samples of one prompt decoded together on the embedded model (models/llamacpp_batch.py):
what holds against the sequential path, the finishing rules, logprobs, the KV cache left
for the next request, and the bytes of characters split across tokens."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from criticlab.errors import ModelError
from criticlab.models import llamacpp, llamacpp_batch
from criticlab.models.base import GenerateConfig, Message, schema_text

pytestmark = pytest.mark.slow

MSGS = [Message("user", "Write a short story about a cat.")]
SAMPLED = GenerateConfig(n=4, temperature=0.8, seed=7, max_tokens=16)


def sequential(model, messages, config):  # type: ignore[no-untyped-def]
    """The path every sample took before: one ``create_chat_completion`` each."""
    with model._lock:
        return model._sequential(messages, config)


def prompt_tokens(model, messages, config) -> list[int]:  # type: ignore[no-untyped-def]
    request = llamacpp_batch.capture_request(model._llm, model._chat_kwargs(messages, config))
    assert request is not None
    return list(request["prompt"])


async def test_greedy_samples_are_the_greedy_text(embedded_model):
    # Asked twice, so that both requests below find the prompt in the cache: llama.cpp's
    # logits (and so a greedy text at a near tie) depend in the last bits on whether the
    # prompt was evaluated in one batch or its last token alone after a cache hit.
    await embedded_model.generate(MSGS, GenerateConfig(max_tokens=16))
    (one,) = await embedded_model.generate(MSGS, GenerateConfig(max_tokens=16))
    four = await embedded_model.generate(MSGS, GenerateConfig(n=4, max_tokens=16))
    assert [g.text for g in four] == [one.text] * 4 and one.text
    assert all(g.usage == one.usage and g.finish_reason == one.finish_reason for g in four)


async def test_sampled_samples_are_seeded_and_finish_right(embedded_model):
    first = await embedded_model.generate(MSGS, SAMPLED)
    again = await embedded_model.generate(MSGS, SAMPLED)
    texts = [g.text for g in first]
    assert texts == [g.text for g in again] and len(texts) == 4  # reproducible
    assert len(set(texts)) == 4  # ... and the samples differ
    n_prompt = len(prompt_tokens(embedded_model, MSGS, SAMPLED))
    for g in first:
        assert g.usage.prompt_tokens == n_prompt and g.usage.calls == 1
        assert 0 < g.usage.completion_tokens <= 16
        assert g.finish_reason == ("length" if g.usage.completion_tokens == 16 else "stop")
    # Same seeds as the sequential path, same distribution: the first token comes from the
    # same prompt logits, later ones from logits that differ in the last bits (a batch).
    alone = sequential(embedded_model, MSGS, SAMPLED)
    assert sum(a.text[:4] == b.text[:4] for a, b in zip(first, alone, strict=True)) >= 3


async def test_stop_strings_cut_the_text(embedded_model):
    msgs = [Message("user", "Count from 1 to 30, separated by commas.")]
    cfg = GenerateConfig(n=4, temperature=0.8, seed=1, max_tokens=24)
    full = await embedded_model.generate(msgs, cfg)
    cut = await embedded_model.generate(msgs, replace(cfg, stop=("7",)))
    assert all("7" not in g.text for g in cut)
    stopped = [i for i, g in enumerate(cut) if g.finish_reason == "stop"]
    assert stopped and all(cut[i].usage.completion_tokens < 24 for i in stopped)
    # Until the first sample stops, both batches decode the same tokens: that sample's text
    # is the uncut one up to the stop string.
    first = min(stopped, key=lambda i: cut[i].usage.completion_tokens)
    assert full[first].text.startswith(cut[first].text + "7")


async def test_logprobs(embedded_model):
    cfg = GenerateConfig(n=3, temperature=0.8, seed=2, max_tokens=8, logprobs=True,
                         top_logprobs=2)
    logits_all = embedded_model._logits_all
    gens = await embedded_model.generate(MSGS, cfg)
    assert embedded_model._logits_all == logits_all  # no reload: rows come from the batch
    for g in gens:
        assert g.logprobs is not None and len(g.logprobs) == g.usage.completion_tokens
        assert "".join(t.token for t in g.logprobs) == g.text
        for t in g.logprobs:
            top = dict(t.top)
            assert t.logprob <= 0 and top[t.token] == t.logprob
            assert len(t.top) in (2, 3)  # the 2 best, and the sampled one if not among them
            assert t.top[0][1] >= t.top[1][1] >= t.logprob or t.top[0][1] >= t.logprob
            assert sum(2.718281828 ** p for _, p in t.top[:2]) <= 1.0 + 1e-5


async def test_cache_is_left_for_the_next_request(embedded_model, monkeypatch):
    llm = embedded_model._llm
    greedy = GenerateConfig(max_tokens=12)
    await embedded_model.generate(MSGS, greedy)
    (before,) = await embedded_model.generate(MSGS, greedy)  # the prompt cached, as below
    await embedded_model.generate(MSGS, SAMPLED)
    prompt = prompt_tokens(embedded_model, MSGS, SAMPLED)
    assert llm.n_tokens == len(prompt) and llm._input_ids.tolist() == prompt
    (after,) = await embedded_model.generate(MSGS, greedy)  # sequential after batched
    assert after.text == before.text
    evaluated: list[int] = []
    real_eval = llm.eval
    monkeypatch.setattr(llm, "eval", lambda tokens: (evaluated.append(len(tokens)),
                                                     real_eval(tokens))[1])
    texts = [g.text for g in await embedded_model.generate(MSGS, SAMPLED)]
    assert evaluated == [2]  # batched after sequential: the prompt reused (see _eval_prompt)
    # a prompt that extends the last one (as Monte Carlo prefixes do) evaluates the rest only
    longer = [Message("user", MSGS[0].content + " Give the cat a name and a hat.")]
    evaluated.clear()
    await embedded_model.generate(longer, SAMPLED)
    new = prompt_tokens(embedded_model, longer, SAMPLED)
    common = llm.longest_token_prefix(prompt, new)
    assert evaluated == [len(new) - common] and common > len(new) // 2
    assert [g.text for g in await embedded_model.generate(MSGS, SAMPLED)] == texts
    assert llamacpp_batch.n_seq_max(llm) == llamacpp_batch.N_SEQ_MAX
    import llama_cpp

    assert llama_cpp.llama_n_threads_batch(llm.ctx) == llm.n_threads_batch  # restored


async def test_chunks_and_the_prompt_that_does_not_fit(embedded_model, monkeypatch):
    llm = embedded_model._llm
    request = {"prompt": [1] * 100, "max_tokens": 2000}
    assert llamacpp_batch.chunk_size(llm, request, 8) == 1  # 2 x 2000 cells do not fit
    assert llamacpp_batch.chunk_size(llm, {**request, "max_tokens": 64}, 40) == 16
    many = await embedded_model.generate(MSGS, GenerateConfig(
        n=18, temperature=1.0, seed=3, max_tokens=3))
    assert len(many) == 18 and len({g.text for g in many}) > 9  # two batches of 9
    monkeypatch.setattr(llamacpp, "chunk_size", lambda llm, request, n: 2)
    cfg = GenerateConfig(n=3, temperature=1.0, seed=3, max_tokens=3)
    three = await embedded_model.generate(MSGS, cfg)  # 2 together, the last one alone
    assert [g.text for g in three[:2]] == [g.text for g in many[:2]]
    assert [g.text for g in three] == [g.text for g in await embedded_model.generate(MSGS, cfg)]
    monkeypatch.undo()
    huge = [Message("user", "word " * 5000)]
    errors = []
    for n in (1, 2):
        with pytest.raises(ModelError) as e:
            await embedded_model.generate(huge, GenerateConfig(n=n, temperature=0.5))
        errors.append(str(e.value))
    assert errors[0] == errors[1] and "exceed context window" in errors[0]


async def test_json_schema_per_sample(embedded_model):
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"]}
    cfg = GenerateConfig(n=3, temperature=0.8, seed=4, max_tokens=24,
                         json_schema=schema_text(schema))
    msgs = [Message("user", "What is 2 + 3? Reply in JSON.")]
    gens = await embedded_model.generate(msgs, cfg)
    for g in gens:  # every sample follows its own grammar to the end
        assert isinstance(json.loads(g.text)["answer"], int), g.text


async def test_characters_split_across_tokens(embedded_model):
    msgs = [Message("user", "How do you say 'thank you' in Japanese? Answer in Japanese "
                            "script.")]
    gens = await embedded_model.generate(msgs, GenerateConfig(
        n=4, temperature=0.8, seed=3, max_tokens=12))
    text = "".join(g.text for g in gens)
    assert any(ord(c) > 0x3000 for c in text) and "\ufffd" not in text


class _Scripted:
    """A sampler that picks the given tokens."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens = iter(tokens)

    def sample(self, ctx, idx) -> int:  # type: ignore[no-untyped-def]
        return next(self.tokens)


def test_bytes_of_split_characters_join(embedded_model):
    llm = embedded_model._llm
    want = "café 🐱 ありがとう"
    tokens = llm.tokenize(want.encode(), add_bos=False)
    pieces = [llm.detokenize([t]) for t in tokens]
    assert any(not _decodes(p) for p in pieces)  # some token holds part of a character
    s = llamacpp_batch.Sample([], sampler=_Scripted(tokens))
    for _ in tokens:
        llamacpp_batch._step(llm, s, -1, [1], len(tokens), [], None, None)
    assert s.text.decode("utf-8") == want and s.finish_reason == "length"
    # a stop string made of a split character cuts at its first byte
    s = llamacpp_batch.Sample([], sampler=_Scripted(tokens))
    while not s.done:
        llamacpp_batch._step(llm, s, -1, [1], 99, ["🐱".encode()], None, None)
    assert s.text.decode("utf-8") == "café " and s.finish_reason == "stop"


def _decodes(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- the transformers engine: the samples of a request are the rows of one batch ---------


class _CharTokenizer:
    """Enough of a tokenizer for HFModel: token t is the letter ``chr(97 + t % 26)``."""

    chat_template = None
    eos_token_id = 0

    def __call__(self, text, return_tensors):  # type: ignore[no-untyped-def]
        import torch

        return {"input_ids": torch.tensor([[1 + ord(c) % 60 for c in text]])}

    def decode(self, ids, skip_special_tokens=True) -> str:  # type: ignore[no-untyped-def]
        return "".join(chr(97 + int(t) % 26) for t in ids if int(t) != 0)


@pytest.fixture(scope="module")
def tiny_hf():  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from criticlab.models.hf import HFModel

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    return HFModel.from_loaded(transformers.LlamaForCausalLM(config), _CharTokenizer(),
                               "hf:tiny")


async def test_hf_samples_decode_as_rows(tiny_hf, monkeypatch):
    from criticlab.models import hf

    msgs = [Message("user", "a tiny random model")]
    cfg = GenerateConfig(n=5, temperature=1.5, seed=11, max_tokens=12, stop=("q",),
                         logprobs=True, top_logprobs=2)
    rows = await tiny_hf.generate(msgs, cfg)
    assert [g.text for g in rows] == [g.text for g in await tiny_hf.generate(msgs, cfg)]
    assert len({g.text for g in rows}) == 5
    # rows finish at different steps (a stop string, the end token, max_tokens) ...
    assert len({g.usage.completion_tokens for g in rows}) > 1
    for g in rows:
        assert "q" not in g.text and len(g.logprobs) == g.usage.completion_tokens <= 12
        assert g.finish_reason == ("length" if g.usage.completion_tokens == 12 else "stop")
    assert [g.usage.calls for g in rows] == [1, 0, 0, 0, 0]
    # ... and each is the sample its seed gives alone (float32: rows agree to the last bits)
    for i, g in enumerate(rows):
        (alone,) = await tiny_hf.generate(msgs, replace(cfg, n=1, seed=11 + i))
        assert (alone.text, alone.finish_reason) == (g.text, g.finish_reason)
    monkeypatch.setattr(hf, "MAX_ROWS", 2)  # 2 + 2 + 1 rows, the prompt's cache copied
    assert [g.text for g in await tiny_hf.generate(msgs, cfg)] == [g.text for g in rows]
    greedy = await tiny_hf.generate(msgs, replace(cfg, temperature=0.0))
    assert len({g.text for g in greedy}) == 1 and greedy[1].usage.calls == 0


async def test_a_context_llama_cpp_refuses_falls_back_to_one_sequence():
    """More sequences than llama.cpp allows: a context like the one before is made again
    (the old one was closed first) and samples are drawn one after another."""
    model = llamacpp.LlamaCppModel(n_ctx=1024, batch_samples=False)
    assert llamacpp_batch.n_seq_max(model._llm) == 1
    assert not llamacpp_batch.enable_sequences(model._llm, n_seq_max=100_000)
    assert llamacpp_batch.n_seq_max(model._llm) == 1
    model.batch_samples = True
    gens = await model.generate(MSGS, replace(SAMPLED, n=2, max_tokens=8))
    assert len(gens) == 2 and all(g.text and g.usage.completion_tokens <= 8 for g in gens)
