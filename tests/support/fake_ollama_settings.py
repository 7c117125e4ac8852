"""What a test sets on the fake Ollama and what it reads back: its settings, the
snapshot of its counters, the log of requests received, and Ollama's busy text.

Plain frozen values, shared by the state (``fake_ollama_core``) and the runner
(``fake_ollama``), which re-exports them for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BUSY_ERROR = "server busy, please try again.  maximum pending requests exceeded"
"""Ollama's ``ErrMaxQueue`` text (``server/sched.go``), answered with 503."""


@dataclass(frozen=True)
class FakeOllamaSettings:
    """How the fake behaves. Times in seconds; change while running with the setters."""

    models: tuple[str, ...] = ("llama3.2:latest", "all-minilm:latest")
    """Installed models (``/api/tags``); requests for others get 404."""
    slots: int = 1
    """``OLLAMA_NUM_PARALLEL``: requests served at once; the rest wait, without bound."""
    tokens: int = 20
    """Tokens per answer unless the request sets ``options.num_predict``/``max_tokens``."""
    tokens_per_second: float = 1000.0
    """Decode speed once the first token is out."""
    load_delay: float = 0.0
    """Seconds to load a model on its first request (and after unload or restart)."""
    max_loaded_models: int | None = None
    """``OLLAMA_MAX_LOADED_MODELS``: a load beyond it first unloads a model as Ollama's
    scheduler does (``fake_ollama_evict``); ``None``: no limit, nothing is evicted."""
    prefill: float = 0.0
    """Seconds of prompt evaluation after getting a slot, before the first token."""
    embedding_size: int = 8
    version: str = "0.11.4"


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    body: Any
    """Parsed JSON, or the text if not JSON, or ``None`` when empty."""
    raw: bytes = b""
    """The body's bytes as received."""


@dataclass(frozen=True)
class FakeOllamaStats:
    """A consistent snapshot of the counters."""

    active: int
    """Slots held now."""
    waiting: int
    """Requests waiting for a slot now."""
    loading: int
    """Requests waiting for a model load now."""
    max_active_seen: int
    served: int
    """Inference requests answered in full."""
    cancelled: int
    """Inference requests whose client went away (loading, waiting or streaming)."""
    died: int
    """Requests killed by ``die_next``."""
    rejected: int
    """Requests answered with an injected status by ``fail_next``."""
