"""Exceptions. A user error (``InputError``, ``ConfigError``) is shown by the CLI as one line
and exit code 2; ``ModelError`` says whether retrying could help."""

from __future__ import annotations


class CriticlabError(Exception):
    """Base class of every error criticlab raises on purpose."""


class InputError(CriticlabError):
    """Bad user input, located: ``path:line: field: message``."""

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class ConfigError(CriticlabError):
    """A bad name or setting: an unknown critic or model, an engine that is not installed."""


class ModelError(CriticlabError):
    """A model call failed. ``retryable`` says whether the same call could succeed later
    (rate limits, server errors, timeouts, dropped connections)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)
