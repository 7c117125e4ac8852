"""Ollama's eviction, for the fake: at most ``max_loaded_models`` models stay loaded.

Ollama's scheduler (``server/sched.go``) handles requests that need a load one at a
time. When ``OLLAMA_MAX_LOADED_MODELS`` models are already loaded it unloads one first
(``findRunnerToUnload``): the loaded models sorted by keep-alive (shortest first, a
negative one, "forever", last: the duration is compared as an unsigned number), then by
name; the first with no request running is the victim; when every one is busy, the
first of them, once its requests are done. Requests for the victim that arrive
meanwhile wait behind the load, as they wait in Ollama's pending queue.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable


def pick_victim(keep_alive: dict[str, float | None], users: dict[str, int]) -> str:
    """The model Ollama unloads to make room: ``keep_alive`` maps each loaded model to
    its keep-alive in seconds (``None`` = forever), ``users`` to its running requests."""
    ordered = sorted(keep_alive, key=lambda n: (_forever_last(keep_alive[n]), n))
    idle = [name for name in ordered if users.get(name, 0) == 0]
    return (idle or ordered)[0]


def _forever_last(seconds: float | None) -> float:
    return math.inf if seconds is None else seconds


class Eviction:
    """Who uses which model, and the one-at-a-time scheduling of loads. Runs on the
    fake's event loop only (``bind`` makes the loop's lock and event)."""

    def __init__(self) -> None:
        self.users: dict[str, int] = {}
        self.keep_alive: dict[str, float | None] = {}
        self.scheduling = asyncio.Lock()
        self._left = asyncio.Event()

    def bind(self) -> None:
        """A new event loop (the server started again): fresh primitives."""
        self.scheduling = asyncio.Lock()
        self._left = asyncio.Event()

    def hold(self, name: str) -> None:
        self.users[name] = self.users.get(name, 0) + 1

    def release(self, name: str) -> None:
        self.users[name] -= 1
        self._left.set()

    async def make_room(
        self,
        name: str,
        limit: int,
        loaded: Callable[[], dict[str, float | None]],
        unload: Callable[[str], None],
    ) -> None:
        """Unload models until ``name`` fits under ``limit``; called with ``scheduling``
        held. ``loaded()``: the models loaded now (expired ones dropped)."""
        while len(others := [n for n in loaded() if n != name]) >= limit:
            victim = pick_victim({n: self.keep_alive.get(n) for n in others}, self.users)
            await self._until_idle(victim)
            unload(victim)

    async def _until_idle(self, name: str) -> None:
        while self.users.get(name, 0) > 0:
            self._left.clear()
            await self._left.wait()
