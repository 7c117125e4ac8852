"""One inference request in the fake Ollama once admitted: the slot it waits for and
holds, its timings (the final chunk's stats), and the death a test scheduled for it.

``FakeOllama.admit`` (``fake_ollama_core``) creates a ``Run`` per request; the
handlers stream its tokens and raise ``Died`` where ``die_next`` asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

WARM_LOAD_DURATION_NS = 50_000
"""``load_duration`` reported when the model was already loaded (real Ollama: ~ms)."""


class Died(Exception):
    """Raised to kill a request mid-stream (see ``FakeOllama.die_next``)."""

    def __init__(self, message: str, how: Literal["close", "error"]) -> None:
        super().__init__(message)
        self.message = message
        self.how = how


@dataclass
class Death:
    """A death ``die_next`` scheduled: after how many tokens, and how."""

    after_tokens: int
    how: Literal["close", "error"]
    error: str


@dataclass
class Run:
    """One admitted inference request: its timings feed the final chunk's stats."""

    started: float
    load_seconds: float
    prefill_seconds: float
    death: Death | None
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
