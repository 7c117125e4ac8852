"""A fake clock whose ``sleep`` returns only when the test says so: a backoff loop can
be stepped one delay at a time, with no real wait."""

from __future__ import annotations

import asyncio

from tests.support.fakes import FakeClock

DEADLINE = 5.0
"""Seconds: a guard against a hang, never waited out when things work."""


class GatedClock(FakeClock):
    """``sleep`` records the delay asked for, then waits for ``wake``."""

    def __init__(self) -> None:
        super().__init__(now=0.0)
        self._asked: asyncio.Queue[float] = asyncio.Queue()
        self._woken = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self._asked.put_nowait(seconds)
        await self._woken.wait()
        self._woken.clear()
        await super().sleep(seconds)

    async def asleep(self) -> float:
        """The delay of the next sleep, once the code under test is in it."""
        return await asyncio.wait_for(self._asked.get(), DEADLINE)

    def wake(self) -> None:
        self._woken.set()
