"""The polling loop: read the clock once per tick, reconcile every due target at once.

The clock and the sleep are injected, so tests drive ticks with a fake clock and
never wait. Errors are logged here, once, at the loop boundary.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from scaler.controller.metrics import ControllerMetrics
from scaler.controller.target import TargetReconciler
from scaler.logs import FIELDS

log = logging.getLogger("scaler.controller")

FAILING_POLLS = 3
"""Polls in a row whose reconcile raised before a target makes the controller
unready: a decision that raises every poll (a bug, or a value no check caught)
never scales, and /readyz must say so instead of 200."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TickBatch(Protocol):
    """Told at each tick which targets it decides, before they read (the readers'
    ``PrometheusBatch`` groups their queries by it)."""

    def begin(self, now: float, keys: Sequence[str]) -> None: ...


class Controller:
    """Polls each target on its own interval; ``now`` is unix seconds from ``clock``.

    ``wake`` decides a target now, between polls: its pushed queue changed. Wakes of
    one target are at least ``push_min_interval`` seconds apart, so a storm of
    changes costs a bounded number of decisions; a wake while the target decides
    makes it decide once more afterwards, on what changed meanwhile.
    """

    def __init__(
        self,
        targets: Sequence[TargetReconciler],
        *,
        metrics: ControllerMetrics,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        push_min_interval: float = 0.05,
        batch: TickBatch | None = None,
    ) -> None:
        self.targets = list(targets)
        self.batch = batch
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.push_min_interval = push_min_interval
        self.due = dict.fromkeys(range(len(self.targets)), 0.0)
        self.polled = dict.fromkeys(range(len(self.targets)), 0.0)  # when the poll is due
        self.pushed = dict.fromkeys(range(len(self.targets)), -math.inf)  # last push decision
        self.index = {target.target.key: i for i, target in enumerate(self.targets)}
        self.deciding: set[int] = set()
        self.again: set[int] = set()  # woken while deciding
        self.woken = asyncio.Event()
        self.ticks = 0
        self.last_tick: float | None = None
        self.raised = dict.fromkeys(range(len(self.targets)), 0)  # polls in a row that raised

    def wake(self, key: str) -> None:
        """Decide target ``key`` ("namespace/deployment") as soon as its wakes allow."""
        index = self.index[key]
        if index in self.deciding:
            self.again.add(index)
        else:
            self.due[index] = min(self.due[index], self._push_due(index))
        self.woken.set()

    def _push_due(self, index: int) -> float:
        return max(self.clock(), self.pushed[index] + self.push_min_interval)

    async def tick(self) -> float:
        """Reconcile the targets that are due; return when the next one is due."""
        self.woken.clear()  # what wakes from here on is seen after this tick
        now = self.clock()  # read once: every target of this tick sees the same time
        due = [i for i, at in self.due.items() if at <= now]
        triggers = ["poll" if self.polled[i] <= now else "push" for i in due]
        if self.batch is not None:
            self.batch.begin(now, [self.targets[i].target.key for i in due])
        self.deciding.update(due)
        try:
            with self.metrics.poll_duration.time():
                results = await asyncio.gather(
                    *(
                        self.targets[i].reconcile(now, trigger=trigger)
                        for i, trigger in zip(due, triggers, strict=True)
                    ),
                    return_exceptions=True,
                )
        finally:
            self.deciding.clear()
        for index, trigger, result in zip(due, triggers, results, strict=True):
            self._done(index, trigger, result, now)
        self.ticks += 1
        self.last_tick = now
        return min(self.due.values())

    def _done(self, index: int, trigger: str, result: object, now: float) -> None:
        target = self.targets[index]
        self.due[index] = self.polled[index] = now + target.poll_interval
        if trigger == "push":
            self.pushed[index] = now
        if index in self.again:
            self.again.discard(index)
            self.due[index] = self._push_due(index)
        if isinstance(result, BaseException):
            if isinstance(result, asyncio.CancelledError):
                raise result
            log.error(
                "reconcile failed", exc_info=result, extra={FIELDS: {"target": target.target.key}}
            )
        # A push decision that raised counts as a poll that raised: both say the
        # target's decisions fail.
        self.raised[index] = self.raised[index] + 1 if isinstance(result, Exception) else 0

    def failing(self) -> list[str]:
        """Targets whose last ``FAILING_POLLS`` polls all raised."""
        return [
            self.targets[index].target.key
            for index, count in self.raised.items()
            if count >= FAILING_POLLS
        ]

    async def run(self) -> None:
        """Tick forever; cancel the task to stop."""
        while True:
            next_due = await self.tick()
            await self._rest(max(0.0, next_due - self.clock()))

    async def _rest(self, seconds: float) -> None:
        """``sleep(seconds)``, cut short by a ``wake``. The injected sleep decides what
        a second is (a fake clock's sleep returns at once)."""
        if seconds <= 0 or self.woken.is_set():
            return
        sleeping = asyncio.ensure_future(self.sleep(seconds))
        woken = asyncio.ensure_future(self.woken.wait())
        try:
            await asyncio.wait((sleeping, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, woken):
                task.cancel()
            await asyncio.gather(sleeping, woken, return_exceptions=True)
