"""What the dispatcher's queue holds and how a wait ends: the pods as it tracks them, a
queued request, and the refusals (each a 503 at the router, docs/router.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from scaler.errors import ScalerError
from scaler.router.endpoints import EndpointState

BACKOFF_FIRST = 0.02
BACKOFF_MAX = 1.0
"""Seconds a pod is passed over after it refused (its slot taken by another router) or
could not be reached; doubled at each consecutive failure, reset by a success."""


class QueueFull(ScalerError):
    """The shared queue already holds ``max_queue`` requests."""


class Draining(ScalerError):
    """The router is stopping: a request that would wait is refused at once."""


class NoReadyPod(ScalerError):
    """No Ollama pod has been ready for ``no_pod_wait`` seconds, or (``cold_start_wait``)
    a request has waited that long with no pod ready."""


@dataclass(slots=True, eq=False)
class Pod:
    """One pod as the dispatcher tracks it. ``active``: our requests it holds."""

    key: str
    url: str
    state: EndpointState
    active: int = 0
    present: bool = True  # in the latest snapshot
    blocked_until: float = 0.0
    backoff: float = 0.0

    @property
    def takes_new(self) -> bool:
        return self.present and self.state is EndpointState.READY


@dataclass(slots=True, eq=False)
class Waiter:
    """A request in the queue: its future, and when it began to wait (clock seconds)."""

    future: asyncio.Future[Pod]
    arrived: float


Schedule = Callable[[float, Callable[[], None]], object]
"""Run a callback after so many seconds (``loop.call_later`` in production)."""


class Alarm:
    """``callback`` at the earliest time asked of ``arm`` (clock seconds). A later time
    asked while an earlier one is pending is dropped: the callback, run then, looks
    again and arms what it still needs."""

    def __init__(
        self, clock: Callable[[], float], schedule: Schedule, callback: Callable[[], None]
    ) -> None:
        self._clock, self._schedule, self._callback = clock, schedule, callback
        self._at: float | None = None

    def arm(self, when: float) -> None:
        if self._at is not None and self._at <= when:
            return
        self._at = when
        self._schedule(max(0.0, when - self._clock()), self._ring)

    def _ring(self) -> None:
        self._at = None
        self._callback()


@dataclass(frozen=True, slots=True)
class NoPodRule:
    """How long a request may wait while no pod is ready at all.

    ``cold_start_wait`` 0: the whole queue gets NoReadyPod ``no_pod_wait`` seconds after
    the last pod went, and arrivals after that at once (a flap or a restart must not
    hang clients). ``cold_start_wait`` > 0 (scale to zero): each request waits that long
    from its own arrival, or from the last pod going if that came later, so a request
    at zero is held while a pod starts.
    """

    no_pod_wait: float
    cold_start_wait: float = 0.0

    def gives_up_at(self, arrived: float, since: float) -> float:
        """When a request that arrived at ``arrived`` gets NoReadyPod, no pod being
        ready since ``since``."""
        if self.cold_start_wait:
            return max(arrived, since) + self.cold_start_wait
        return since + self.no_pod_wait

    def refuses_at_once(self, now: float, since: float) -> bool:
        return not self.cold_start_wait and now - since >= self.no_pod_wait

    def message(self) -> str:
        if self.cold_start_wait:
            return f"no Ollama pod is ready (waited {self.cold_start_wait:g} s for one)"
        return f"no Ollama pod is ready (none for {self.no_pod_wait:g} s)"
