"""Which models the fake Ollama holds in memory, until when, and how it loads them.

A model loads on its first request (``load_delay``), concurrent first requests
sharing one load; with ``max_loaded_models`` set, loads go one at a time and make room
first, as Ollama's scheduler does (``fake_ollama_evict``). Each request's
``keep_alive`` then sets how long the model stays. Only ``FakeOllama``
(``fake_ollama_core``) uses this; it shares its lock, so its counters' snapshot
(``loading`` among them) stays consistent.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.support.fake_ollama_evict import Eviction
from tests.support.fake_ollama_settings import FakeOllamaSettings
from tests.support.fake_ollama_shapes import DEFAULT_KEEP_ALIVE, full_name, parse_keep_alive


class Residency:
    """The loaded models of one fake (name → monotonic expiry, ``None`` = never)."""

    def __init__(self, lock: threading.Lock, settings: Callable[[], FakeOllamaSettings]) -> None:
        self._lock = lock
        self._settings = settings
        self._loaded: dict[str, float | None] = {}  # name -> monotonic expiry, None = never
        self._load_locks: dict[str, asyncio.Lock] = {}
        self.eviction = Eviction()
        self.loading = 0
        """Requests waiting for a load now; read under the lock."""

    def loaded(self) -> dict[str, float | None]:
        """Loaded model names → seconds left (``None`` = forever); expired ones dropped."""
        now = time.monotonic()
        with self._lock:
            for name, expiry in list(self._loaded.items()):
                if expiry is not None and expiry <= now:
                    del self._loaded[name]
            return {n: None if e is None else e - now for n, e in self._loaded.items()}

    def unload(self, model: str) -> None:
        with self._lock:
            self._loaded.pop(full_name(model), None)

    def unload_all(self) -> None:
        with self._lock:
            self._loaded.clear()

    async def ensure_loaded(self, name: str, keep_alive: Any) -> float:
        """Wait for ``name`` to be loaded (paying ``load_delay`` if it was not); returns
        the seconds waited. Concurrent first requests share one load."""
        started = time.monotonic()
        limit = self._settings().max_loaded_models
        if limit is not None:
            async with self.eviction.scheduling:  # one load at a time, as Ollama's scheduler
                await self._load_evicting(name, limit)
        elif name not in self.loaded():
            lock = self._load_locks.setdefault(name, asyncio.Lock())
            self._add_loading(1)
            try:
                async with lock:
                    if name not in self.loaded():
                        await asyncio.sleep(self._settings().load_delay)
                        self._touch(name, DEFAULT_KEEP_ALIVE)
            finally:
                self._add_loading(-1)
        self._touch(name, parse_keep_alive(keep_alive))
        return time.monotonic() - started

    async def _load_evicting(self, name: str, limit: int) -> None:
        if name in self.loaded():
            return
        self._add_loading(1)
        try:
            await self.eviction.make_room(name, limit, self.loaded, self.unload)
            await asyncio.sleep(self._settings().load_delay)
            self._touch(name, DEFAULT_KEEP_ALIVE)
        finally:
            self._add_loading(-1)

    def _touch(self, name: str, keep_alive: float | None) -> None:
        self.eviction.keep_alive[name] = keep_alive
        with self._lock:
            self._loaded[name] = None if keep_alive is None else time.monotonic() + keep_alive

    def _add_loading(self, delta: int) -> None:
        with self._lock:
            self.loading += delta
