"""Critiques and critique rewards over HTTP: ``criticlab serve``'s app (:func:`build_app`),
its clients (:class:`Client`, :class:`AsyncClient`) and a TRL reward function over a server
or an in-process critic (:func:`reward_function`). FastAPI and httpx are imported only when
one of them is used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from criticlab.serve.app import build_app
    from criticlab.serve.client import AsyncClient, Client
    from criticlab.serve.trl import reward_function

__all__ = ["AsyncClient", "Client", "build_app", "reward_function"]

_WHERE = {"build_app": "app", "Client": "client", "AsyncClient": "client",
          "reward_function": "trl"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'criticlab.serve' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"criticlab.serve.{_WHERE[name]}"), name)
