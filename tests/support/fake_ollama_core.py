"""State of the fake Ollama: settings, slots, loaded models, counters, injected failures;
the installed models and blobs are its ``ModelStore`` (``fake_ollama_store``).

The HTTP handlers live in the other ``fake_ollama_*`` modules; ``fake_ollama``
assembles and runs them. What tests set and read is in ``fake_ollama_settings``; one
admitted request (its slot, timings and death) in ``fake_ollama_run``; the loaded
models in ``fake_ollama_residency``.
Everything here runs on the server's event loop, except the setters and the read-only
counters, which tests call from their own thread (hence the lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from aiohttp import web

from tests.support.fake_ollama_residency import Residency
from tests.support.fake_ollama_run import Death, Died, Run, Slots
from tests.support.fake_ollama_settings import (
    BUSY_ERROR,
    FakeOllamaSettings,
    FakeOllamaStats,
    LoggedRequest,
)
from tests.support.fake_ollama_shapes import answer_tokens, full_name, parse_keep_alive
from tests.support.fake_ollama_store import ModelStore


class ApiError(Exception):
    """An error answered as ``{"error": ...}`` (or OpenAI's shape under ``/v1``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FakeOllama:
    """The fake's state. Setters and counters are safe to use from any thread."""

    def __init__(
        self, settings: FakeOllamaSettings | None = None, *, store: ModelStore | None = None
    ) -> None:
        """``store``: the models volume, shared with other fakes (``fake_ollama_store``);
        a private one by default. ``settings.models`` are installed in it either way."""
        self._settings = settings or FakeOllamaSettings()
        self._lock = threading.Lock()
        self.store = store or ModelStore()
        for model in self._settings.models:
            self.store.install(model)
        self.residency = Residency(self._lock, lambda: self._settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failures: deque[tuple[int, str]] = deque()
        self._deaths: deque[Death] = deque()
        self._log: list[LoggedRequest] = []
        self._counts = dict.fromkeys(
            ("max_active_seen", "served", "cancelled", "died", "rejected"), 0
        )
        self.slots = Slots(lambda: self._settings.slots, self._note_active)

    # -- settings (any thread) -------------------------------------------------------

    @property
    def settings(self) -> FakeOllamaSettings:
        return self._settings

    def configure(self, **changes: Any) -> None:
        """Change any ``FakeOllamaSettings`` field; takes effect for new requests
        (``slots`` at once: raising it lets waiters in)."""
        with self._lock:
            self._settings = dataclasses.replace(self._settings, **changes)
        if "slots" in changes and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.slots.wake)

    def set_slots(self, slots: int) -> None:
        self.configure(slots=slots)

    def set_tokens(self, tokens: int) -> None:
        self.configure(tokens=tokens)

    def set_tokens_per_second(self, tokens_per_second: float) -> None:
        self.configure(tokens_per_second=tokens_per_second)

    def set_load_delay(self, seconds: float) -> None:
        self.configure(load_delay=seconds)

    def set_prefill(self, seconds: float) -> None:
        self.configure(prefill=seconds)

    def fail_next(self, count: int = 1, status: int = 503, error: str = BUSY_ERROR) -> None:
        """The next ``count`` inference requests get ``status`` and ``{"error": error}``
        at once, before any load or slot wait (as Ollama's scheduler answers 503)."""
        with self._lock:
            self._failures.extend([(status, error)] * count)

    def die_next(
        self,
        after_tokens: int,
        how: Literal["close", "error"] = "close",
        error: str = "an error was encountered while running the model",
    ) -> None:
        """Kill the next inference request after ``after_tokens`` tokens were sent.

        ``close``: the connection is closed with no final chunk (a crashed runner or a
        dropped pod). ``error``: an ``{"error": ...}`` line ends the 200 stream, which is
        what Ollama itself sends when the runner fails mid-stream.
        """
        with self._lock:
            self._deaths.append(Death(after_tokens, how, error))

    def unload_all(self) -> None:
        """Forget loaded models: the next request of each pays ``load_delay`` again."""
        self.residency.unload_all()

    # -- counters (any thread) -------------------------------------------------------

    def stats(self) -> FakeOllamaStats:
        with self._lock:
            return FakeOllamaStats(
                active=self.slots.active,
                waiting=self.slots.waiting,
                loading=self.residency.loading,
                **self._counts,
            )

    @property
    def active(self) -> int:
        return self.stats().active

    @property
    def waiting(self) -> int:
        return self.stats().waiting

    @property
    def max_active_seen(self) -> int:
        return self.stats().max_active_seen

    @property
    def served(self) -> int:
        return self.stats().served

    @property
    def cancelled(self) -> int:
        return self.stats().cancelled

    @property
    def died(self) -> int:
        return self.stats().died

    @property
    def rejected(self) -> int:
        return self.stats().rejected

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received, in order (all paths, not only inference)."""
        with self._lock:
            return list(self._log)

    def wait_until(
        self, predicate: Callable[[FakeOllamaStats], bool], timeout: float = 5.0
    ) -> FakeOllamaStats:
        """Poll the counters from a synchronous test until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate(stats := self.stats()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s: {stats}")
            time.sleep(0.005)
        return stats

    async def wait_until_async(
        self, predicate: Callable[[FakeOllamaStats], bool], timeout: float = 5.0
    ) -> FakeOllamaStats:
        """Same as ``wait_until``, without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while not predicate(stats := self.stats()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s: {stats}")
            await asyncio.sleep(0.005)
        return stats

    # -- used by the handlers (server loop) ------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.residency.eviction.bind()

    def log_request(self, method: str, path: str, body: Any, raw: bytes = b"") -> None:
        with self._lock:
            self._log.append(LoggedRequest(method, path, body, raw))

    def installed(self) -> dict[str, float]:
        """Installed model names → modified time (epoch seconds), from the store."""
        return self.store.installed()

    def install(self, model: str) -> None:
        self.store.install(model)

    def remove(self, model: str) -> bool:
        """Delete ``model`` from the store and forget it is loaded here (a
        simplification); other fakes sharing the store keep it loaded, and answer
        404 to new requests for it."""
        self.unload(model)
        return self.store.remove(model)

    def require(self, model: Any) -> str:
        """The full name of an installed model, or the error Ollama answers."""
        if not model or not isinstance(model, str):
            raise ApiError(400, "model is required")
        if full_name(model) not in self.installed():
            raise ApiError(404, f"model '{model}' not found")
        return full_name(model)

    def loaded(self) -> dict[str, float | None]:
        """Loaded model names → seconds left (``None`` = forever)."""
        return self.residency.loaded()

    def unload(self, model: str) -> None:
        self.residency.unload(model)

    async def ensure_loaded(self, name: str, keep_alive: Any) -> float:
        """Seconds waited for ``name`` to be loaded (``Residency.ensure_loaded``)."""
        return await self.residency.ensure_loaded(name, keep_alive)

    @contextlib.asynccontextmanager
    async def admit(self, model: Any, keep_alive: Any = None) -> AsyncIterator[Run]:
        """Admit one inference request: injected failure, model check, load, slot,
        prefill; the slot is held until the block exits and released however it exits."""
        self._take_failure()
        name = self.require(model)
        started = time.monotonic()
        try:
            load_seconds = await self.ensure_loaded(name, keep_alive)
            # No await since the load: it cannot be evicted in between.
            self.residency.eviction.hold(name)
            try:
                await self.slots.acquire()
                try:
                    settings = self._settings
                    await asyncio.sleep(settings.prefill)
                    with self._lock:
                        death = self._deaths.popleft() if self._deaths else None
                    yield Run(started, load_seconds, settings.prefill, death)
                finally:
                    self.slots.release()
                    if parse_keep_alive(keep_alive) == 0:
                        self.unload(name)
            finally:
                self.residency.eviction.release(name)
        except Died:
            self._count("died")
            raise
        except (asyncio.CancelledError, ConnectionError):
            self._count("cancelled")
            raise
        self._count("served")

    async def tokens(self, run: Run, count: int) -> AsyncIterator[str]:
        """Yield ``count`` tokens paced at ``tokens_per_second``; raise ``Died`` where
        ``die_next`` asked for it."""
        pace = 1.0 / self._settings.tokens_per_second
        run.first_token_at = time.monotonic()
        for i, token in enumerate(answer_tokens(count)):
            if run.death is not None and i == run.death.after_tokens:
                raise Died(run.death.error, run.death.how)
            delay = run.first_token_at + i * pace - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield token
        if run.death is not None and run.death.after_tokens >= count:
            raise Died(run.death.error, run.death.how)

    def _take_failure(self) -> None:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
            if failure is not None:
                self._counts["rejected"] += 1
        if failure is not None:
            raise ApiError(*failure)

    def _note_active(self, active: int) -> None:
        with self._lock:
            self._counts["max_active_seen"] = max(self._counts["max_active_seen"], active)

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1


FAKE = web.AppKey("fake_ollama", FakeOllama)
"""Where the handlers find the state: ``request.app[FAKE]``."""
