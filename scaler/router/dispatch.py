"""One first-in first-out queue for every Ollama pod, bound to a pod only at a free slot.

Late binding is the point: a request waits here, not on a pod picked at random, so a
pod that becomes ready takes the oldest waiting request at once, and a busy pod never
holds a request that another pod could serve now. A pod gets at most ``parallel``
requests from this router; another router may hold some of the same slots, which is
why the pod's own proxy refuses a taken slot and ``refused`` sends the request back to
the head of the queue (docs/router.md, "Two routers").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from scaler.errors import ScalerError
from scaler.router.endpoints import Endpoint, EndpointState, Snapshot

BACKOFF_FIRST = 0.02
BACKOFF_MAX = 1.0
"""Seconds a pod is passed over after it refused (its slot taken by another router) or
could not be reached; doubled at each consecutive failure, reset by a success."""


class QueueFull(ScalerError):
    """The shared queue already holds ``max_queue`` requests."""


class Draining(ScalerError):
    """The router is stopping: a request that would wait is refused at once."""


class NoReadyPod(ScalerError):
    """No Ollama pod has been ready for ``no_pod_wait`` seconds."""


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


Schedule = Callable[[float, Callable[[], None]], object]
"""Run a callback after so many seconds (``loop.call_later`` in production)."""


class Dispatcher:
    """The shared queue and the pods' slots; all methods run on the event loop.

    ``clock``: monotonic seconds. ``no_pod_wait``: seconds a request may wait while no
    pod is ready at all (a readiness flap, a restart) before it gets a 503; once no pod
    has been ready for that long, arrivals are refused at once instead of hanging.
    """

    def __init__(
        self,
        *,
        parallel: int,
        max_queue: int,
        no_pod_wait: float,
        clock: Callable[[], float],
        schedule: Schedule,
    ) -> None:
        self.parallel = parallel
        self.max_queue = max_queue
        self.no_pod_wait = no_pod_wait
        self._clock = clock
        self._schedule = schedule
        self.pods: dict[str, Pod] = {}
        self._queue: deque[asyncio.Future[Pod]] = deque()
        self._no_ready_since: float | None = clock()
        self._wakeup_at: float | None = None
        self._give_up_armed_for: float | None = None  # the _no_ready_since it is armed for
        self._retired: list[Pod] = []  # replaced under a reused name, still holding requests
        self._closed: str | None = None  # why no new request may wait (close())
        self._refusing = False  # nothing may wait any more, admitted or not (refuse_waiting())

    # -- what the metrics read --------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return sum(pod.active for pod in self.pods.values()) + sum(
            pod.active for pod in self._retired
        )

    def pods_by_state(self) -> dict[EndpointState, int]:
        counts = dict.fromkeys(EndpointState, 0)
        for pod in self.pods.values():
            if pod.present:
                counts[pod.state] += 1
        return counts

    # -- pods -------------------------------------------------------------------------

    def update(self, snapshot: Snapshot) -> None:
        """Take discovery's whole new view of the pods. A pod that left the snapshot
        finishes what it holds and is forgotten after its last request."""
        for key, pod in list(self.pods.items()):
            if key not in snapshot:
                pod.present = False
                if pod.active == 0:
                    del self.pods[key]
        for key, endpoint in snapshot.items():
            self._merge(endpoint, self.pods.get(key))
        self._note_readiness()
        self._dispatch()

    def _merge(self, endpoint: Endpoint, pod: Pod | None) -> None:
        if pod is None or pod.url != endpoint.url:  # a new pod (or a reused name)
            if pod is not None and pod.active:
                pod.present = False
                self._retired.append(pod)  # finishes its requests under its old address
            self.pods[endpoint.key] = Pod(endpoint.key, endpoint.url, endpoint.state)
            return
        pod.state = endpoint.state
        pod.present = True

    def _note_readiness(self) -> None:
        if any(pod.takes_new for pod in self.pods.values()):
            self._no_ready_since = None
        elif self._no_ready_since is None:
            self._no_ready_since = self._clock()
            if self._queue:
                self._arm_give_up()

    def _arm_give_up(self) -> None:
        since = self._no_ready_since
        if since is None or self._give_up_armed_for == since:
            return
        self._give_up_armed_for = since
        self._schedule(max(0.0, since + self.no_pod_wait - self._clock()), self._give_up_if_no_pod)

    def _give_up_if_no_pod(self) -> None:
        since = self._no_ready_since
        if since is None or self._clock() - since < self.no_pod_wait:
            return
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_exception(NoReadyPod(self._no_pod_message()))

    def _no_pod_message(self) -> str:
        return f"no Ollama pod is ready (none for {self.no_pod_wait:g} s)"

    # -- requests ---------------------------------------------------------------------

    async def acquire(self, *, again: bool = False) -> Pod:
        """A pod with a free slot for one request, waiting in the queue for it.

        ``again``: the request was already admitted and is back (its pod refused it or
        could not be reached): it goes to the head of the queue and is not counted
        against ``max_queue``. Raises QueueFull or NoReadyPod at once, NoReadyPod also
        after ``no_pod_wait`` seconds without any ready pod; Draining once ``close``d
        if no slot is free (a request back ``again`` still queues: it was admitted),
        and once ``refuse_waiting`` for everything, waiting or not.
        """
        if not self._queue:
            pod = self._free_pod(self._clock())
            if pod is not None:
                pod.active += 1
                return pod
        if self._closed is not None and (not again or self._refusing):
            raise Draining(self._closed)
        since = self._no_ready_since
        if since is not None and self._clock() - since >= self.no_pod_wait:
            raise NoReadyPod(self._no_pod_message())
        if not again and len(self._queue) >= self.max_queue:
            raise QueueFull(f"the queue of {self.max_queue} requests is full")
        waiter: asyncio.Future[Pod] = asyncio.get_running_loop().create_future()
        self._arm_give_up()
        if again:
            self._queue.appendleft(waiter)
        else:
            self._queue.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())  # bound as we were cancelled: pass it on
            else:
                self._forget(waiter)
            raise

    def close(self, reason: str) -> None:
        """The router is stopping: a new request that finds no free slot at once gets
        Draining now (503 + Retry-After: the client goes to the other router) instead
        of joining a queue the drain may never empty. Requests already waiting keep
        their places: they are served as slots free up, until ``refuse_waiting``."""
        self._closed = reason

    def refuse_waiting(self, reason: str) -> None:
        """The drain's time is up: every request still waiting gets Draining now (503 +
        Retry-After), rather than a reset connection when the process is killed."""
        self._closed = reason
        self._refusing = True
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_exception(Draining(reason))

    def _forget(self, waiter: asyncio.Future[Pod]) -> None:
        with contextlib.suppress(ValueError):  # already taken off by a dispatch or give-up
            self._queue.remove(waiter)

    def release(self, pod: Pod) -> None:
        """One of our requests on ``pod`` ended (answered, failed or cancelled)."""
        pod.active -= 1
        pod.backoff = 0.0
        pod.blocked_until = 0.0  # the slot we held is free now, as far as we know
        self._forget_if_done(pod)
        self._dispatch()

    def refused(self, pod: Pod) -> None:
        """``pod`` turned our request away before Ollama saw it (its slot is taken by
        another router, or it cannot be reached): pass it over for a while."""
        pod.active -= 1
        pod.backoff = min(BACKOFF_MAX, pod.backoff * 2 or BACKOFF_FIRST)
        pod.blocked_until = self._clock() + pod.backoff
        self._forget_if_done(pod)
        self._wake_at(pod.blocked_until)

    def _forget_if_done(self, pod: Pod) -> None:
        if pod.present or pod.active:
            return
        if self.pods.get(pod.key) is pod:
            del self.pods[pod.key]
        else:
            self._retired = [p for p in self._retired if p is not pod]

    def _wake_at(self, when: float) -> None:
        if self._wakeup_at is not None and self._wakeup_at <= when:
            return  # an earlier wake-up will look again
        self._wakeup_at = when
        self._schedule(max(0.0, when - self._clock()), self._wake)

    def _wake(self) -> None:
        self._wakeup_at = None
        self._dispatch()
        blocked = [p.blocked_until for p in self.pods.values() if p.blocked_until > self._clock()]
        if self._queue and blocked:
            self._wake_at(min(blocked))

    def _free_pod(self, now: float) -> Pod | None:
        """The ready pod with the fewest of our requests and a free slot, if any."""
        best: Pod | None = None
        for pod in self.pods.values():
            if pod.active >= self.parallel or not pod.takes_new or pod.blocked_until > now:
                continue
            if best is None or pod.active < best.active:
                best = pod
        return best

    def least_busy(self) -> Pod | None:
        """A ready pod for a request outside the queue (model list, show, blobs)."""
        ready = [pod for pod in self.pods.values() if pod.takes_new]
        return min(ready, key=lambda pod: pod.active) if ready else None

    def _dispatch(self) -> None:
        """Bind the head of the queue to free slots, oldest request first."""
        now = self._clock()
        while self._queue:
            pod = self._free_pod(now)
            if pod is None:
                return
            waiter = self._queue.popleft()
            if waiter.done():
                continue
            pod.active += 1
            waiter.set_result(pod)
