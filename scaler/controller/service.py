"""The running controller: the owner of its background tasks, and the health it reports.

``scaler.controller.app`` builds one ``Service`` per ``scaler run`` and spawns every
long-lived task through it; the HTTP endpoints it serves (``/healthz`` for liveness,
``/readyz`` for readiness) read their answers here. Kept apart from the wiring so the
health rules (what a restart can cure, what it cannot) read on their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from scaler.config import ScalerConfig
from scaler.config.bounds import listed
from scaler.controller.loop import FAILING_POLLS, Controller
from scaler.controller.metrics import ControllerMetrics

# ``scaler run``'s logger, as in app.py: a task's death is logged beside its start.
log = logging.getLogger("scaler.run")


class Service:
    """The running controller: its tasks, its HTTP endpoints, its health."""

    def __init__(self, config: ScalerConfig, controller: Controller, metrics: ControllerMetrics):
        self.config = config
        self.controller = controller
        self.metrics = metrics
        self.started = controller.clock()
        self.tasks: list[asyncio.Task[None]] = []
        self.failed = asyncio.Event()

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Start a task that should run until shutdown; if it ends early, say so and
        stop the process, so Kubernetes restarts it."""
        task = asyncio.create_task(coroutine, name=name)
        task.add_done_callback(self._ended)
        self.tasks.append(task)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        log.error("task %s ended unexpectedly", task.get_name(), exc_info=error)
        self.failed.set()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    @property
    def window(self) -> float:
        """Seconds a healthy loop may go without completing a tick: three polls of
        the fastest target (at least 10 s) plus a query timeout. Bounded, because the
        poll interval is (at most 300 s: at most 1,140 s here)."""
        return max(10.0, 3 * self.config.shortest_poll_interval) + self.config.timeout

    def stalled(self) -> tuple[str, str] | None:
        """Why the loop cannot poll (a status and a reason), or None. A restart can cure
        a stalled loop, so this is what liveness (``/healthz``) reports."""
        now = self.controller.clock()
        last = self.controller.last_tick or self.started
        if now - last >= self.window:
            return "stalled", f"no poll completed for {now - last:.0f} s"
        return None

    def problem(self) -> tuple[str, str] | None:
        """Why the controller does not scale (a status and a reason), or None: a loop
        that cannot poll, or a target whose decisions raise every poll. A raising target
        fails readiness only: a restart would not cure it (the same input raises again)
        and a crash loop would stop the healthy targets too."""
        stalled = self.stalled()
        if stalled is not None:
            return stalled
        failing = self.controller.failing()
        if failing:
            return "failing", f"the last {FAILING_POLLS} polls raised for {listed(failing)}"
        return None

    @property
    def healthy(self) -> bool:
        return self.problem() is None

    async def healthz(self, request: web.Request) -> web.Response:
        problem = self.stalled()
        if problem is None:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": problem[0], "reason": problem[1]}, status=503)

    async def readyz(self, request: web.Request) -> web.Response:
        problem = self.problem()
        if problem is not None:
            return web.json_response({"status": problem[0], "reason": problem[1]}, status=503)
        if self.controller.ticks > 0:
            return web.json_response({"status": "ready", "ticks": self.controller.ticks})
        return web.json_response({"status": "starting"}, status=503)
