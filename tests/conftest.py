"""Shared fixtures: the real embedded model in-process, a real llama.cpp server on
127.0.0.1, and the shared benchmark data (skipped cleanly when absent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded_path() -> Path:
    from criticlab.errors import ConfigError
    from criticlab.models.llamacpp import embedded_model_path

    try:
        return embedded_model_path()
    except ConfigError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def embedded_model(embedded_path: Path):  # type: ignore[no-untyped-def]
    from criticlab.models.llamacpp import LlamaCppModel

    return LlamaCppModel(embedded_path, n_ctx=4096)


@pytest.fixture(scope="session")
def llama_server(embedded_path: Path) -> Iterator[str]:
    """Base URL of llama.cpp's OpenAI-compatible server with the embedded GGUF."""
    from criticlab.models.llamacpp import serve

    with serve(embedded_path, alias="smollm2", n_ctx=4096) as url:
        yield url
