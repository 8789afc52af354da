"""transformers models in-process: for scoring (token logprobs, PRMs) and for trained
checkpoints (a full checkpoint folder or a LoRA adapter on its base).

``load_causal_lm`` (see :mod:`criticlab.models.hf_load`) turns a spec into a model and its
tokenizer; :class:`HFModel` puts one behind the :class:`LanguageModel` protocol. On CPU the
embedded SmolLM2-135M runs at roughly 20 tokens/s with one thread: this engine is for
scoring and for checking a trained checkpoint, llama.cpp (``embedded``) is the fast one.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from criticlab.errors import ConfigError, ModelError
from criticlab.models.base import (
    STRUCTURED_ENGINES,
    GenerateConfig,
    Generation,
    Message,
    TokenLogprob,
    messages_to_dicts,
)
from criticlab.models.hf_load import (
    cache_root,
    ensure_gguf_checkpoint,
    load_causal_lm,
    load_pretrained,
)
from criticlab.types import Usage

__all__ = [
    "HFModel",
    "cache_root",
    "ensure_gguf_checkpoint",
    "load_causal_lm",
    "load_pretrained",
]

log = logging.getLogger(__name__)

MAX_ROWS = 16
"""Samples of one request decoded together; more are decoded in batches of this many."""


class HFModel:
    """A transformers causal LM behind the :class:`LanguageModel` protocol.

    ``spec`` is anything :func:`load_causal_lm` accepts (``"embedded"``, a ``.gguf`` file, a
    checkpoint or adapter folder, a hub name); ``name`` defaults to ``hf:SPEC`` (plus
    ``+ADAPTER``). Requests run one at a time in a worker thread under a lock, so one loaded
    model is shared safely by concurrent callers and the event loop stays free.

    Decoding: greedy at temperature 0, else temperature then nucleus (``top_p``) sampling with
    no top-k and no repetition penalty, so the parameters mean what they mean on the other
    engines. Sample ``i`` draws from its own ``torch.Generator`` seeded ``seed + i``
    (reproducible, and the process-wide RNG is untouched); the prompt is encoded once per
    request and the samples are decoded together, one row each of a batch (up to
    ``MAX_ROWS`` at a time; rows leave the batch as they finish). A row in a batch gets
    logits that may differ in the last bits from the same row decoded alone, so sample
    ``i`` of an n-sample request and the same seed asked alone agree up to such a bit
    (a token sampled at a tie of that size would differ). Logprobs are those of the model's
    own distribution (before temperature and ``top_p``), tokens decoded to text. A stop
    string ends the text before it; the logprobs and ``completion_tokens`` then cover the
    tokens that make up the returned text (the end-of-turn token is never counted).
    """

    def __init__(
        self,
        spec: str | Path = "embedded",
        *,
        dtype: str = "float32",
        adapter: str | Path | None = None,
        name: str | None = None,
    ) -> None:
        model, tokenizer = load_causal_lm(spec, dtype=dtype, adapter=adapter)
        default = f"hf:{spec}" + ("" if adapter is None else f"+{adapter}")
        self._init(model, tokenizer, name or default)

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, name: str) -> HFModel:
        """Wrap a model and tokenizer already in memory (e.g. one just trained)."""
        self = cls.__new__(cls)
        self._init(model, tokenizer, name)
        return self

    def _init(self, model: Any, tokenizer: Any, name: str) -> None:
        self.name = name
        self.model = model.eval()
        self.tokenizer = tokenizer
        self._lock = threading.Lock()
        self._eos = _eos_ids(model, tokenizer)
        self._max_positions = getattr(_base_config(model), "max_position_embeddings", None)

    async def generate(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]:
        if config.json_schema is not None:
            raise ConfigError(f"{self.name}: transformers decoding here cannot follow a JSON "
                              f"schema (--structured); {STRUCTURED_ENGINES}")
        return await asyncio.to_thread(self._generate_blocking, messages, config)

    def _generate_blocking(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]:
        import torch

        with self._lock, torch.inference_mode():
            prompt = self._encode(messages)
            n_prompt = int(prompt.shape[1])
            if self._max_positions and n_prompt >= self._max_positions:
                raise ModelError(
                    f"{self.name}: the prompt has {n_prompt} tokens, the model's context "
                    f"is {self._max_positions}", retryable=False)
            max_new = config.max_tokens
            if self._max_positions:
                max_new = min(max_new, self._max_positions - n_prompt)
            out = self.model(input_ids=prompt, use_cache=True)
            first_logits = out.logits[0, -1].float()
            greedy = config.temperature <= 0
            # Greedy decoding is deterministic: every sample is the first one.
            n = 1 if greedy else config.n
            samples: list[tuple[str, int, list[TokenLogprob], str]] = []
            for start in range(0, n, MAX_ROWS):
                seeds = range(start, min(n, start + MAX_ROWS))
                generators = [torch.Generator() for _ in seeds]
                for i, generator in zip(seeds, generators, strict=True):
                    if config.seed is None:
                        generator.seed()
                    else:
                        generator.manual_seed(config.seed + i)
                cache = out.cache if start + MAX_ROWS >= n else copy.deepcopy(out.cache)
                samples += self._decode(first_logits, cache, max_new, config, generators)
            if greedy:
                samples *= config.n
            gens: list[Generation] = []
            for i, (text, n_tokens, lps, finish) in enumerate(samples):
                gens.append(Generation(
                    text=text,
                    logprobs=tuple(lps) if config.logprobs else None,
                    usage=Usage(prompt_tokens=n_prompt if i == 0 else 0,
                                completion_tokens=n_tokens, calls=1 if i == 0 else 0),
                    finish_reason=finish,
                ))
        return gens

    def _encode(self, messages: Sequence[Message]) -> Any:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            enc = tok.apply_chat_template(
                messages_to_dicts(messages), add_generation_prompt=True, tokenize=True,
                return_dict=True, return_tensors="pt")
            return enc["input_ids"]
        # A base model without a chat template: the turns' text, one paragraph each.
        log.debug("%s has no chat template; joining the messages as plain text", self.name)
        text = "\n\n".join(m.content for m in messages)
        return tok(text, return_tensors="pt")["input_ids"]

    def _decode(
        self, logits: Any, cache: Any, max_new: int, config: GenerateConfig,
        generators: list[Any],
    ) -> list[tuple[str, int, list[TokenLogprob], str]]:
        """Samples from the prompt's last logits and its KV cache (which is repeated per
        sample, then extended, rows dropped as their samples finish), sample ``i`` drawn with
        ``generators[i]``: each one's text, token count, logprobs (when asked) and finish
        reason."""
        import torch

        n = len(generators)
        if n > 1:
            cache.batch_repeat_interleave(n)
        logits = logits.unsqueeze(0).expand(n, -1)
        ids: list[list[int]] = [[] for _ in range(n)]
        lps: list[list[TokenLogprob]] = [[] for _ in range(n)]
        done: dict[int, tuple[str, int, list[TokenLogprob], str]] = {}
        rows = list(range(n))  # the sample in each row of the cache
        for step in range(max_new):
            keep = []
            for r, i in enumerate(rows):
                token = _pick(logits[r], config.temperature, config.top_p, generators[i])
                if token in self._eos:
                    done[i] = (self._text(ids[i]), len(ids[i]), lps[i], "stop")
                    continue
                ids[i].append(token)
                if config.logprobs:
                    lps[i].append(self._logprob(logits[r], token, config.top_logprobs))
                if config.stop:
                    text = self._text(ids[i])
                    cut = _first_stop(text, config.stop)
                    if cut is not None:
                        k = self._tokens_covering(ids[i], cut)
                        done[i] = (text[:cut], k, lps[i][:k], "stop")
                        continue
                keep.append(r)
            if not keep or step == max_new - 1:
                break
            if len(keep) < len(rows):
                cache.batch_select_indices(torch.tensor(keep))
                rows = [rows[r] for r in keep]
            out = self.model(input_ids=torch.tensor([[ids[i][-1]] for i in rows]),
                             cache=cache, use_cache=True)
            cache = out.cache
            logits = out.logits[:, -1].float()
        return [done.get(i) or (self._text(ids[i]), len(ids[i]), lps[i], "length")
                for i in range(n)]

    def _text(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _logprob(self, logits: Any, token: int, top: int) -> TokenLogprob:
        import torch

        logp = torch.log_softmax(logits, dim=-1)
        pairs: tuple[tuple[str, float], ...] = ()
        if top > 0:
            values, indices = torch.topk(logp, min(top, int(logp.shape[-1])))
            pairs = tuple((self._piece(int(j)), float(v)) for v, j in
                          zip(values.tolist(), indices.tolist(), strict=True))
        return TokenLogprob(self._piece(token), float(logp[token]), pairs)

    def _piece(self, token: int) -> str:
        return str(self.tokenizer.decode([token]))

    def _tokens_covering(self, ids: list[int], cut: int) -> int:
        """The fewest leading tokens whose text reaches character ``cut``."""
        for k in range(len(ids) + 1):
            if len(self.tokenizer.decode(ids[:k], skip_special_tokens=True)) >= cut:
                return k
        return len(ids)


def _pick(logits: Any, temperature: float, top_p: float, generator: Any) -> int:
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        # keep the smallest head whose mass reaches top_p (always at least one token)
        drop = torch.cumsum(sorted_p, dim=-1) - sorted_p >= top_p
        sorted_p[drop] = 0.0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
    return int(torch.multinomial(probs, 1, generator=generator))


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def _base_config(model: Any) -> Any:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.config


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    gen_config = getattr(model, "generation_config", None)
    for source in (getattr(gen_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(int(x) for x in source)
    return ids
