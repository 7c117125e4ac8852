"""State of the fake Ollama: settings, slots, loaded models, counters, injected failures;
the installed models and blobs are its ``ModelStore`` (``fake_ollama_store``).

The HTTP handlers live in the other ``fake_ollama_*`` modules; ``fake_ollama``
assembles and runs them.
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
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from tests.support.fake_ollama_evict import Eviction
from tests.support.fake_ollama_shapes import (
    DEFAULT_KEEP_ALIVE,
    answer_tokens,
    full_name,
    parse_keep_alive,
)
from tests.support.fake_ollama_store import ModelStore

BUSY_ERROR = "server busy, please try again.  maximum pending requests exceeded"
"""Ollama's ``ErrMaxQueue`` text (``server/sched.go``), answered with 503."""
WARM_LOAD_DURATION_NS = 50_000
"""``load_duration`` reported when the model was already loaded (real Ollama: ~ms)."""


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


class ApiError(Exception):
    """An error answered as ``{"error": ...}`` (or OpenAI's shape under ``/v1``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Died(Exception):
    """Raised to kill a request mid-stream (see ``FakeOllama.die_next``)."""

    def __init__(self, message: str, how: Literal["close", "error"]) -> None:
        super().__init__(message)
        self.message = message
        self.how = how


@dataclass
class _Death:
    after_tokens: int
    how: Literal["close", "error"]
    error: str


@dataclass
class Run:
    """One admitted inference request: its timings feed the final chunk's stats."""

    started: float
    load_seconds: float
    prefill_seconds: float
    death: _Death | None
    first_token_at: float = 0.0

    def stats(self, prompt_tokens: int, eval_count: int) -> dict[str, int]:
        now = time.monotonic()
        decode = now - (self.first_token_at or now)
        return {
            "total_duration": _ns(now - self.started),
            "load_duration": _ns(self.load_seconds) if self.load_seconds else WARM_LOAD_DURATION_NS,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": max(1, _ns(self.prefill_seconds)),
            "eval_count": eval_count,
            "eval_duration": max(1, _ns(decode)),
        }


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class Slots:
    """FIFO slots like Ollama's ``semaphore.NewWeighted(numParallel)``: unbounded waiting.

    The limit may change at any time; ``wake()`` hands freed or added slots to waiters.
    """

    def __init__(self, limit: Callable[[], int], on_acquire: Callable[[int], None]) -> None:
        self._limit = limit
        self._on_acquire = on_acquire
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    async def acquire(self) -> None:
        if self.active < self._limit() and not self._waiters:
            self._grant()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as the client left: give it back
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.active -= 1
        self.wake()

    def wake(self) -> None:
        while self._waiters and self.active < self._limit():
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._grant()
                waiter.set_result(None)

    def _grant(self) -> None:
        self.active += 1
        self._on_acquire(self.active)


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
        self._loaded: dict[str, float | None] = {}  # name -> monotonic expiry, None = never
        self._load_locks: dict[str, asyncio.Lock] = {}
        self._eviction = Eviction()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failures: deque[tuple[int, str]] = deque()
        self._deaths: deque[_Death] = deque()
        self._log: list[LoggedRequest] = []
        self._loading = 0
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
            self._deaths.append(_Death(after_tokens, how, error))

    def unload_all(self) -> None:
        """Forget loaded models: the next request of each pays ``load_delay`` again."""
        with self._lock:
            self._loaded.clear()

    # -- counters (any thread) -------------------------------------------------------

    def stats(self) -> FakeOllamaStats:
        with self._lock:
            return FakeOllamaStats(
                active=self.slots.active,
                waiting=self.slots.waiting,
                loading=self._loading,
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
        self._eviction.bind()

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

    async def ensure_loaded(self, name: str, keep_alive: Any) -> float:
        """Wait for ``name`` to be loaded (paying ``load_delay`` if it was not); returns
        the seconds waited. Concurrent first requests share one load."""
        started = time.monotonic()
        limit = self._settings.max_loaded_models
        if limit is not None:
            async with self._eviction.scheduling:  # one load at a time, as Ollama's scheduler
                await self._load_evicting(name, limit)
        elif name not in self.loaded():
            lock = self._load_locks.setdefault(name, asyncio.Lock())
            self._add_loading(1)
            try:
                async with lock:
                    if name not in self.loaded():
                        await asyncio.sleep(self._settings.load_delay)
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
            await self._eviction.make_room(name, limit, self.loaded, self.unload)
            await asyncio.sleep(self._settings.load_delay)
            self._touch(name, DEFAULT_KEEP_ALIVE)
        finally:
            self._add_loading(-1)

    @contextlib.asynccontextmanager
    async def admit(self, model: Any, keep_alive: Any = None) -> AsyncIterator[Run]:
        """Admit one inference request: injected failure, model check, load, slot,
        prefill; the slot is held until the block exits and released however it exits."""
        self._take_failure()
        name = self.require(model)
        started = time.monotonic()
        try:
            load_seconds = await self.ensure_loaded(name, keep_alive)
            self._eviction.hold(name)  # no await since the load: it cannot be evicted between
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
                self._eviction.release(name)
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

    def _touch(self, name: str, keep_alive: float | None) -> None:
        self._eviction.keep_alive[name] = keep_alive
        with self._lock:
            self._loaded[name] = None if keep_alive is None else time.monotonic() + keep_alive

    def _note_active(self, active: int) -> None:
        with self._lock:
            self._counts["max_active_seen"] = max(self._counts["max_active_seen"], active)

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _add_loading(self, delta: int) -> None:
        with self._lock:
            self._loading += delta


FAKE = web.AppKey("fake_ollama", FakeOllama)
"""Where the handlers find the state: ``request.app[FAKE]``."""
