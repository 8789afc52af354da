"""The one protocol every engine implements, and the request/response types around it; and
the protocol of engines that score solution steps (process reward models)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from criticlab.types import Usage

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """A chat message; ``images`` (paths or URLs) go with the text to models that see."""

    role: Role
    content: str
    images: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.images, tuple):
            object.__setattr__(self, "images", tuple(self.images))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.images:
            d["images"] = list(self.images)
        return d

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI chat format: plain text, or text and ``image_url`` parts (a local file
        becomes a base64 ``data:`` URL, so the server needs no access to this machine)."""
        if not self.images:
            return {"role": self.role, "content": self.content}
        parts: list[dict[str, Any]] = [{"type": "text", "text": self.content}]
        parts += [{"type": "image_url", "image_url": {"url": image_url(i)}} for i in self.images]
        return {"role": self.role, "content": parts}


MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""The largest local image file read into a request."""

# An image's type, read from its first bytes (never from its name).
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"),
)


def is_image_url(image: str) -> bool:
    """An http(s) URL or a ``data:image/...`` URL: sent on as it is, never read here."""
    return image.startswith(("http://", "https://", "data:image/"))


def image_type(head: bytes) -> str | None:
    """The MIME type of an image file from its first 16 bytes; ``None`` if not an image."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _IMAGE_SIGNATURES if head.startswith(magic)), None)


def image_url(image: str) -> str:
    """``image`` as a URL: http(s) and data URLs unchanged, a local file as a data URL. The
    file must be a regular file of at most :data:`MAX_IMAGE_BYTES` whose bytes are an image
    (PNG, JPEG, GIF, WebP, BMP, TIFF); anything else is an ``InputError`` before it is read
    (a device, a FIFO or a directory is never opened for reading)."""
    if is_image_url(image) or image.startswith("data:"):
        return image
    import base64
    import os
    import stat

    from criticlab.errors import InputError

    try:  # O_NONBLOCK: opening a FIFO does not wait for a writer
        fd = os.open(image, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise InputError(f"cannot read the image: {e.strerror}", path=image) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InputError("not a regular file", path=image)
    if info.st_size > MAX_IMAGE_BYTES:
        os.close(fd)
        raise InputError(f"{info.st_size} bytes, over the image limit of {MAX_IMAGE_BYTES}",
                         path=image)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_IMAGE_BYTES + 1)
    mime = image_type(data[:16])
    if mime is None:
        raise InputError("not an image (PNG, JPEG, GIF, WebP, BMP or TIFF, read from its "
                         "first bytes)", path=image)
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(f"over the image limit of {MAX_IMAGE_BYTES} bytes", path=image)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass(frozen=True)
class GenerateConfig:
    """Sampling parameters of one request. ``n`` samples are returned; sample ``i`` of a
    seeded request is reproducible on engines that honour seeds (``seed + i`` where an engine
    draws samples one at a time)."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    max_tokens: int = 1024
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    json_schema: str | None = None
    """A JSON schema (its canonical JSON text, :func:`schema_text`) the reply must follow:
    each engine constrains its decoding to it (a grammar, structured outputs, a
    ``response_format``), or refuses in one line. ``None``: free text."""

    def __post_init__(self) -> None:
        if not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        if self.n < 1:
            raise ValueError("n must be at least 1")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")

    def params(self) -> dict[str, Any]:
        """The parameters that decide one sample's text (everything but ``n`` and ``seed``),
        as used in the store's request key."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "logprobs": self.logprobs,
            "top_logprobs": self.top_logprobs,
            # only when set: free-text requests keep the keys they always had
            **({"json_schema": self.json_schema} if self.json_schema is not None else {}),
        }

    def schema(self) -> dict[str, Any] | None:
        """The JSON schema as an object (``None`` for free text)."""
        import json

        return None if self.json_schema is None else json.loads(self.json_schema)


STRUCTURED_ENGINES = ("structured output runs on embedded, llamacpp:PATH.gguf, vllm:MODEL "
                      "and openai:MODEL against a server with structured outputs (vLLM, "
                      "SGLang, llama.cpp, Ollama, OpenAI)")


def schema_text(schema: Mapping[str, Any]) -> str:
    """The JSON text of a schema as a request carries it and the store keys it: compact, key
    order kept (the order of ``properties`` is the order an engine makes the model write the
    fields in: a reasoning field before the verdict)."""
    import json

    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "logprob": self.logprob, "top": [list(t) for t in self.top]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TokenLogprob:
        return cls(
            str(d["token"]), float(d["logprob"]), tuple((str(t), float(p)) for t, p in d["top"])
        )


@dataclass(frozen=True)
class Generation:
    """One sample. ``usage.calls``/``usage.cached`` say whether it came from an engine or the
    store; a request of n samples reports its prompt tokens on the first sample only."""

    text: str
    logprobs: tuple[TokenLogprob, ...] | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "logprobs": None if self.logprobs is None else [t.to_dict() for t in self.logprobs],
            "usage": self.usage.to_dict(),
            "finish_reason": self.finish_reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Generation:
        lp = d.get("logprobs")
        return cls(
            text=str(d["text"]),
            logprobs=None if lp is None else tuple(TokenLogprob.from_dict(t) for t in lp),
            usage=Usage.from_dict(d.get("usage") or {}),
            finish_reason=d.get("finish_reason"),
        )


@runtime_checkable
class LanguageModel(Protocol):
    """An engine. ``name`` identifies the weights (it is part of every cache key)."""

    name: str

    async def generate(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]: ...


@dataclass(frozen=True)
class StepScores:
    """One score per step of a solution (criticlab's PRMs: in [0, 1], higher = more likely
    right), and what computing them cost (``usage.cached`` when the store answered)."""

    scores: tuple[float, ...]
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", tuple(float(s) for s in self.scores))

    def to_dict(self) -> dict[str, Any]:
        return {"scores": list(self.scores), "usage": self.usage.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepScores:
        return cls(tuple(float(s) for s in d["scores"]), Usage.from_dict(d.get("usage") or {}))


@runtime_checkable
class StepScorer(Protocol):
    """An engine that scores the steps of a solution to ``question`` (a process reward model,
    :mod:`criticlab.models.prm`), or the store's :class:`~criticlab.cache.CachedModel` around
    one. ``name`` identifies the weights and the input format (part of every cache key)."""

    name: str

    async def score_steps(self, question: str, steps: Sequence[str]) -> StepScores: ...


def messages_to_dicts(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages in the OpenAI chat format (image parts included)."""
    return [m.to_openai() for m in messages]
