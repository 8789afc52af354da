"""n samples of one prompt decoded together on one llama.cpp context.

:class:`~criticlab.models.llamacpp.LlamaCppModel` asks for n samples of one chat prompt
(maj@n critiques, Monte Carlo rollouts, ``select --n``). Drawn one after another, every
sample pays a full forward pass per token; here the prompt is evaluated once on sequence 0,
its KV cells are shared with sequences 1..k-1 (``llama_memory_seq_cp``), and every
``llama_decode`` call then advances all live sequences by one token: the weights are read
once per step for k tokens, which is where a CPU spends its time.

What stays exactly as in ``Llama.create_chat_completion``, because the request is first
captured from it (:func:`capture_request`: the chat handler runs as usual, and its call to
``create_completion`` is intercepted): the prompt tokens, the stop strings (the chat
format's end-of-turn text included), the stopping criteria, the grammar of a JSON schema,
and the sampler chain (``Llama._init_sampler`` with the same arguments: llama-cpp-python's
top_k 40 and min_p 0.05 besides ``temperature``/``top_p``; greedy at temperature 0).
Sample ``i`` gets its own chain seeded ``seed + i`` (its own grammar state too), so it
draws from the distribution the sequential path draws from, with the same seed. The texts
agree with the sequential path's only up to llama.cpp's numerics: a token decoded in a
batch of k gets logits that differ in the last bits from one decoded alone, so greedy and
seeded texts may part at a near tie (see the tests).

Finishing rules follow ``Llama._create_completion``: an end-of-generation token ends a
sample (``"stop"``, not counted), a stop string ends it and cuts the text before it
(``"stop"``), ``max_tokens`` (capped by the context) ends it (``"length"``); text is the
bytes of the tokens joined, then decoded (a character split across tokens comes out whole).
Logprobs are the log-softmax of each sampled token's raw logits row, with the
``top_logprobs`` best and the sampled token, as the sequential path reports them.

The KV cache is left as the sequential path expects it: sequences 1..k-1 removed,
sequence 0 holding the prompt and ``Llama``'s ``input_ids``/``n_tokens`` saying so, with
``_requires_eval`` set so that the next request re-evaluates the last prompt token rather
than sampling from the logits of the batch. The next request, batched or not, reuses the
longest common token prefix, as ``Llama.generate`` does.

The context must allow the sequences: :func:`enable_sequences` swaps ``Llama``'s context
for one with ``n_seq_max`` sequences and a unified KV cache (every sequence may use the whole
``n_ctx``, so a long prompt fits as before). A request of more samples than the context
holds, or whose samples' tokens do not fit the KV cache together, is split into chunks.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

N_SEQ_MAX = 16
"""Sequences per context: more samples than this are decoded in chunks."""


def enable_sequences(llm: Any, n_seq_max: int = N_SEQ_MAX) -> bool:
    """Give ``llm`` (a ``llama_cpp.Llama``) a context of ``n_seq_max`` sequences sharing one
    KV cache of ``n_ctx`` cells, in place of the single-sequence one ``Llama`` made (closed
    first: the two caches are never held at once). Returns False, with a single-sequence
    context as before, where llama.cpp cannot: a recurrent or hybrid model, or a build whose
    sequences would get less than the whole context."""
    import llama_cpp
    from llama_cpp import _internals

    if getattr(llm, "_is_recurrent", False) or getattr(llm, "_is_hybrid", False):
        return False
    params = llm.context_params
    old_max, old_unified = params.n_seq_max, params.kv_unified
    n_ctx = llama_cpp.llama_n_ctx(llm.ctx)
    # the old context goes first, so that two KV caches are never held at once (a large
    # model's cache on a GPU may not fit twice)
    llm._ctx.close()
    params.n_seq_max, params.kv_unified = n_seq_max, True
    ctx: Any = None
    try:
        ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=llm.verbose)
        ok = (llama_cpp.llama_n_ctx_seq(ctx.ctx) >= n_ctx
              and llama_cpp.llama_n_seq_max(ctx.ctx) >= n_seq_max)
    except ValueError:
        ok = False
    if not ok:  # a single-sequence context again, as Llama made it
        if ctx is not None:
            ctx.close()
        params.n_seq_max, params.kv_unified = old_max, old_unified
        ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=llm.verbose)
    llm._ctx = ctx
    llm._stack.enter_context(contextlib.closing(ctx))
    llm.reset()
    return ok


def n_seq_max(llm: Any) -> int:
    import llama_cpp

    return int(llama_cpp.llama_n_seq_max(llm.ctx))


class _Captured(BaseException):  # not an Exception: no handler's ``except`` swallows it
    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.kwargs = kwargs


class _Capture:
    """``llm`` for a chat handler, except that ``create_completion`` hands back its
    arguments instead of generating."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def create_completion(self, **kwargs: Any) -> Any:
        raise _Captured(kwargs)


def capture_request(llm: Any, chat_kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The ``create_completion`` arguments ``llm.create_chat_completion(**chat_kwargs)``
    would generate with (prompt tokens, stops, grammar, sampling), or None when its chat
    handler does not go through ``create_completion`` with a token prompt."""
    from llama_cpp import Llama

    try:
        Llama.create_chat_completion(_Capture(llm), **chat_kwargs)  # type: ignore[arg-type]
    except _Captured as c:
        kwargs = c.kwargs
    except (TypeError, AttributeError):  # a handler that needs the real Llama object
        return None
    else:
        return None
    prompt = kwargs.get("prompt")
    if not isinstance(prompt, list) or not prompt or kwargs.get("stream"):
        return None
    if kwargs.get("logits_processor") is not None or kwargs.get("logit_bias") is not None:
        return None  # these look at Llama's own input_ids: one sequence only
    if kwargs.get("suffix") is not None or kwargs.get("echo"):
        return None
    return kwargs


@dataclass
class Sample:
    """One decoded sequence."""

    tokens: list[int]
    text: bytes = b""
    finish_reason: str | None = None
    logprobs: list[tuple[str, float, tuple[tuple[str, float], ...]]] | None = None
    sampler: Any = None

    @property
    def done(self) -> bool:
        return self.finish_reason is not None


def max_new_tokens(llm: Any, request: dict[str, Any]) -> int:
    """``max_tokens`` as ``Llama._create_completion`` caps it; raises its ValueError when the
    prompt does not fit the context."""
    import llama_cpp

    n_prompt, n_ctx = len(request["prompt"]), llm._n_ctx
    if n_prompt >= n_ctx:
        raise ValueError(f"Requested tokens ({n_prompt}) exceed context window of "
                         f"{llama_cpp.llama_n_ctx(llm.ctx)}")
    max_tokens = request.get("max_tokens")
    if max_tokens is None or max_tokens <= 0 or max_tokens + n_prompt >= n_ctx:
        return int(n_ctx - n_prompt)
    return int(max_tokens)


def chunk_size(llm: Any, request: dict[str, Any], n: int) -> int:
    """How many samples of ``request`` one batch may decode: at most the context's
    sequences, and as many as the KV cache holds next to the prompt (each sample may write
    ``max_tokens`` cells of its own). 1 means: decode one at a time."""
    n_prompt = len(request["prompt"])
    room = (llm._n_ctx - n_prompt) // max(1, max_new_tokens(llm, request))
    return max(1, min(n, n_seq_max(llm), room))


def decode(llm: Any, request: dict[str, Any], seeds: Sequence[int | None],
           n_threads: int) -> list[Sample]:
    """Decode ``len(seeds)`` samples of ``request`` (from :func:`capture_request`) together;
    sample ``i`` is drawn with seed ``seeds[i]`` (None: random). ``len(seeds)`` must be at
    most :func:`chunk_size`. Runs ``llama_decode`` with ``n_threads`` threads."""
    import llama_cpp

    prompt: list[int] = list(request["prompt"])
    n_prompt, k = len(prompt), len(seeds)
    max_new = max_new_tokens(llm, request)
    stops = [s.encode("utf-8") for s in request.get("stop") or [] if s]
    criteria = request.get("stopping_criteria")
    top = request.get("logprobs")  # None: no logprobs; else how many alternatives
    samples = [Sample([], logprobs=None if top is None else []) for _ in seeds]
    mem = llama_cpp.llama_get_memory(llm.ctx)
    batch = llama_cpp.llama_batch_init(k, 0, 1)
    seed_before, ok = llm._seed, False
    try:
        for i, seed in enumerate(seeds):
            llm.set_seed(llama_cpp.LLAMA_DEFAULT_SEED if seed is None else seed & 0xFFFFFFFF)
            samples[i].sampler = llm._init_sampler(
                top_k=request["top_k"], top_p=request["top_p"], min_p=request["min_p"],
                typical_p=request["typical_p"], temp=request["temperature"],
                repeat_penalty=request["repeat_penalty"],
                frequency_penalty=request["frequency_penalty"],
                presence_penalty=request["presence_penalty"], tfs_z=request["tfs_z"],
                mirostat_mode=request["mirostat_mode"], mirostat_tau=request["mirostat_tau"],
                mirostat_eta=request["mirostat_eta"], grammar=request.get("grammar"))
        _eval_prompt(llm, prompt)
        for i in range(1, k):
            llama_cpp.llama_memory_seq_rm(mem, i, -1, -1)
            llama_cpp.llama_memory_seq_cp(mem, 0, i, -1, -1)
        llama_cpp.llama_set_n_threads(llm.ctx, n_threads, n_threads)
        rows = [-1] * k  # each live sequence's logits row in the last decode
        while True:
            live = []
            for i, s in enumerate(samples):
                if not s.done:
                    _step(llm, s, rows[i], prompt, max_new, stops, criteria, top)
                    if not s.done:
                        live.append(i)
            if not live:
                break
            for j, i in enumerate(live):
                batch.token[j] = samples[i].tokens[-1]
                batch.pos[j] = n_prompt + len(samples[i].tokens) - 1
                batch.n_seq_id[j] = 1
                batch.seq_id[j][0] = i
                batch.logits[j] = 1
                rows[i] = j
            batch.n_tokens = len(live)
            rc = llama_cpp.llama_decode(llm.ctx, batch)
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc} decoding {len(live)} samples")
        ok = True
    finally:
        llm.set_seed(seed_before)
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_set_n_threads(llm.ctx, llm.n_threads, llm.n_threads_batch)
        for s in samples:
            if s.sampler is not None:
                s.sampler.close()
                s.sampler = None
        _restore(llm, mem, k, n_prompt if ok else 0)
    return samples


def _eval_prompt(llm: Any, prompt: list[int]) -> None:
    """Evaluate ``prompt`` on sequence 0, reusing the longest common prefix already in the
    cache, but evaluating at least its last two tokens: llama.cpp computes a batch of one
    token another way (its logits differ by up to ~1 on the embedded model), while those of
    several tokens do not depend on where the batch starts; so the first tokens of a seeded
    request come out the same whatever the cache held before."""
    from llama_cpp import Llama

    reuse = Llama.longest_token_prefix(llm._input_ids.tolist(), prompt)
    reuse = max(0, min(reuse, len(prompt) - 2))
    if reuse > 0 and llm._ctx.kv_cache_seq_rm(0, reuse, -1):
        llm.n_tokens = reuse
    else:
        llm.reset()
        llm._ctx.kv_cache_clear()
    llm.eval(prompt[llm.n_tokens:])


def _restore(llm: Any, mem: Any, k: int, n_prompt: int) -> None:
    """Leave only sequence 0 holding the first ``n_prompt`` tokens (0: nothing), as Llama's
    bookkeeping says, for the next request to reuse."""
    import llama_cpp

    for i in range(1, k):
        llama_cpp.llama_memory_seq_rm(mem, i, -1, -1)
    if n_prompt and llama_cpp.llama_memory_seq_rm(mem, 0, n_prompt, -1):
        llm.n_tokens = min(llm.n_tokens, n_prompt)
    else:
        llm.reset()
        llm._ctx.kv_cache_clear()
    llm._requires_eval = True  # the logits at hand are the batch's, not the prompt's


def _step(llm: Any, s: Sample, row: int, prompt: list[int], max_new: int,
          stops: list[bytes], criteria: Any, top: int | None) -> None:
    """Sample the next token of ``s`` from logits ``row`` and apply the finishing rules of
    ``Llama._create_completion``."""
    import llama_cpp

    token = int(s.sampler.sample(llm._ctx, row))
    if criteria is not None and criteria(_ids(prompt, s.tokens), _logits(llm, row)):
        s.finish_reason = "stop"
        return
    if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
        s.finish_reason = "stop"
        return
    s.tokens.append(token)
    piece = llm.detokenize([token])
    before = len(s.text)
    s.text += piece
    if s.logprobs is not None and top is not None:
        s.logprobs.append(_logprob(llm, row, token, piece, top))
    for stop in stops:
        at = s.text.find(stop, max(0, before - len(stop) + 1))
        if at >= 0:  # nothing before ``before`` matched at the last step
            s.text = s.text[:at]
            s.finish_reason = "stop"
            return
    if len(s.tokens) >= max_new:
        s.finish_reason = "length"


def _ids(prompt: list[int], tokens: list[int]) -> Any:
    """The tokens evaluated so far, as ``Llama.generate`` hands them to stopping criteria."""
    import numpy as np

    return np.array(prompt + tokens, dtype=np.intc)


def _logits(llm: Any, row: int) -> Any:
    import numpy as np

    ptr = llm._ctx.get_logits_ith(row)
    return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)),
                                 shape=(llm._n_vocab,))


def _logprob(llm: Any, row: int, token: int, piece: bytes, top: int
             ) -> tuple[str, float, tuple[tuple[str, float], ...]]:
    """The sampled token's logprob and the ``top`` best, as ``Llama._create_completion``
    reports them: the best first (ties: the higher id first), the sampled token added when
    not among them; token texts decoded alone, partial characters dropped."""
    import numpy as np
    from llama_cpp import Llama

    logp = Llama.logits_to_logprobs(_logits(llm, row))
    text = piece.decode("utf-8", errors="ignore")
    best: dict[str, float] = {}
    if top > 0:
        head = np.argpartition(logp, -top)[-top:]
        for j in sorted(head.tolist(), key=lambda j: (float(logp[j]), j), reverse=True):
            best[llm.detokenize([j]).decode("utf-8", errors="ignore")] = float(logp[j])
    best[text] = float(logp[token])
    return text, float(logp[token]), tuple(best.items())
