"""The polling loop: read the clock once per tick, reconcile every due target at once.

The clock and the sleep are injected, so tests drive ticks with a fake clock and
never wait. Errors are logged here, once, at the loop boundary.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

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


class Controller:
    """Polls each target on its own interval; ``now`` is unix seconds from ``clock``."""

    def __init__(
        self,
        targets: Sequence[TargetReconciler],
        *,
        metrics: ControllerMetrics,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.targets = list(targets)
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.due = dict.fromkeys(range(len(self.targets)), 0.0)
        self.ticks = 0
        self.last_tick: float | None = None
        self.raised = dict.fromkeys(range(len(self.targets)), 0)  # polls in a row that raised

    async def tick(self) -> float:
        """Reconcile the targets that are due; return when the next one is due."""
        now = self.clock()  # read once: every target of this tick sees the same time
        due = [i for i, at in self.due.items() if at <= now]
        with self.metrics.poll_duration.time():
            results = await asyncio.gather(
                *(self.targets[i].reconcile(now) for i in due), return_exceptions=True
            )
        for index, result in zip(due, results, strict=True):
            target = self.targets[index]
            self.due[index] = now + target.poll_interval
            self.raised[index] = self.raised[index] + 1 if isinstance(result, Exception) else 0
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                log.error(
                    "reconcile failed",
                    exc_info=result,
                    extra={FIELDS: {"target": target.target.key}},
                )
        self.ticks += 1
        self.last_tick = now
        return min(self.due.values())

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
            await self.sleep(max(0.0, next_due - self.clock()))
