"""One first-in first-out queue for every Ollama pod, bound to a pod only at a free slot.

Late binding is the point: a request waits here, not on a pod picked at random, so a
pod that becomes ready takes the oldest waiting request at once, and a busy pod never
holds a request that another pod could serve now. A pod gets at most ``parallel``
requests from this router; another router may hold some of the same slots, which is
why the pod's own proxy refuses a taken slot and ``refused`` sends the request back to
the head of the queue (docs/router.md, "Two routers"). Which pods there are, and which
has a free slot, is the ``PodTable``'s (``pods``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from scaler.router.endpoints import Snapshot
from scaler.router.pods import PodTable
from scaler.router.waiting import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    Alarm,
    Draining,
    NoPodRule,
    NoReadyPod,
    Pod,
    QueueFull,
    Schedule,
    Waiter,
)

__all__ = ["BACKOFF_FIRST", "Dispatcher", "Draining", "NoReadyPod", "Pod", "QueueFull"]


class Dispatcher:
    """The shared queue, bound to free slots of the ``table``'s pods; all methods run
    on the event loop.

    ``clock``: monotonic seconds. ``no_pod_wait``, ``cold_start_wait``: how long a
    request may wait while no pod is ready at all (``NoPodRule``). ``listeners`` are
    called after every change of (``queued``, ``in_flight``).
    """

    def __init__(
        self,
        *,
        parallel: int,
        max_queue: int,
        no_pod_wait: float,
        clock: Callable[[], float],
        schedule: Schedule,
        cold_start_wait: float = 0.0,
    ) -> None:
        self.parallel = parallel
        self.max_queue = max_queue
        self.no_pod = NoPodRule(no_pod_wait, cold_start_wait)
        self._clock = clock
        self.table = PodTable()
        self.listeners: list[Callable[[], None]] = []
        self._queue: deque[Waiter] = deque()
        self._in_flight = 0
        self._reported = (0, 0)  # (queued, in_flight) the listeners last heard of
        self._no_ready_since: float | None = clock()
        self._wakeup = Alarm(clock, schedule, self._wake)  # a passed-over pod's turn
        self._give_up = Alarm(clock, schedule, self._give_up_if_no_pod)
        self._closed: str | None = None  # why no new request may wait (close())
        self._refusing = False  # nothing may wait any more, admitted or not (refuse_waiting())

    # -- what the metrics read --------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def pods(self) -> dict[str, Pod]:
        """The pods by key (``PodTable.pods``)."""
        return self.table.pods

    def _changed(self) -> None:
        """Tell the listeners, if (queued, in_flight) moved since they last heard: a
        tuple compare per event, so a thousand changes a second cost little."""
        state = (len(self._queue), self._in_flight)
        if state != self._reported:
            self._reported = state
            for listener in self.listeners:
                listener()

    # -- pods -------------------------------------------------------------------------

    def update(self, snapshot: Snapshot) -> None:
        """Take discovery's whole new view of the pods. A pod that left the snapshot
        finishes what it holds and is forgotten after its last request."""
        self.table.update(snapshot)
        self._note_readiness()
        self._dispatch()
        self._changed()

    def _note_readiness(self) -> None:
        if self.table.any_ready():
            self._no_ready_since = None
        elif self._no_ready_since is None:
            self._no_ready_since = self._clock()
            if self._queue:
                since = self._no_ready_since
                self._give_up.arm(self.no_pod.gives_up_at(since, since))

    def _give_up_if_no_pod(self) -> None:
        since = self._no_ready_since
        if since is None:
            return
        now, kept = self._clock(), deque[Waiter]()
        for waiter in self._queue:
            if self.no_pod.gives_up_at(waiter.arrived, since) > now:
                kept.append(waiter)
            elif not waiter.future.done():
                waiter.future.set_exception(NoReadyPod(self.no_pod.message()))
        self._queue = kept
        if kept:
            self._give_up.arm(min(self.no_pod.gives_up_at(w.arrived, since) for w in kept))
        self._changed()

    # -- requests ---------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    async def acquire(self, *, again: bool = False, arrived: float | None = None) -> Pod:
        """A pod with a free slot for one request, waiting in the queue for it.

        ``again``: the request was already admitted and is back (its pod refused it or
        could not be reached): it goes to the head of the queue and is not counted
        against ``max_queue``. ``arrived``: when it first asked (``now()``; default
        now). Raises QueueFull or NoReadyPod at once, NoReadyPod also when ``NoPodRule``
        says so; Draining once ``close``d if no slot is free (a request
        back ``again`` still queues: it was admitted), and once ``refuse_waiting`` for
        everything, waiting or not.
        """
        now = self._clock()
        if not self._queue:
            pod = self.table.free_pod(now, self.parallel)
            if pod is not None:
                self._bind(pod)
                self._changed()
                return pod
        waiter = self._admit(again, now if arrived is None else arrived, now)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release(future.result())  # bound as we were cancelled: pass it on
            else:
                self._forget(waiter)
            raise

    def _admit(self, again: bool, arrived: float, now: float) -> Waiter:
        """Queue a request that found no free slot, or raise why it may not wait."""
        if self._closed is not None and (not again or self._refusing):
            raise Draining(self._closed)
        since = self._no_ready_since
        if since is not None and self.no_pod.refuses_at_once(now, since):
            raise NoReadyPod(self.no_pod.message())
        if not again and len(self._queue) >= self.max_queue:
            raise QueueFull(f"the queue of {self.max_queue} requests is full")
        waiter = Waiter(asyncio.get_running_loop().create_future(), arrived)
        if since is not None:
            self._give_up.arm(self.no_pod.gives_up_at(waiter.arrived, since))
        if again:
            self._queue.appendleft(waiter)
        else:
            self._queue.append(waiter)
        self._changed()
        return waiter

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
            if not waiter.future.done():
                waiter.future.set_exception(Draining(reason))
        self._changed()

    def _forget(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):  # already taken off by a dispatch or give-up
            self._queue.remove(waiter)
        self._changed()

    def _bind(self, pod: Pod) -> None:
        pod.active += 1
        self._in_flight += 1

    def _unbind(self, pod: Pod) -> None:
        pod.active -= 1
        self._in_flight -= 1

    def release(self, pod: Pod) -> None:
        """One of our requests on ``pod`` ended (answered, failed or cancelled)."""
        self._unbind(pod)
        pod.backoff = 0.0
        pod.blocked_until = 0.0  # the slot we held is free now, as far as we know
        self.table.forget_if_done(pod)
        self._dispatch()
        self._changed()

    def refused(self, pod: Pod) -> None:
        """``pod`` turned our request away before Ollama saw it (its slot is taken by
        another router, or it cannot be reached): pass it over for a while."""
        self._unbind(pod)
        pod.backoff = min(BACKOFF_MAX, pod.backoff * 2 or BACKOFF_FIRST)
        pod.blocked_until = self._clock() + pod.backoff
        self.table.forget_if_done(pod)
        self._wakeup.arm(pod.blocked_until)
        self._changed()

    def _wake(self) -> None:
        self._dispatch()
        self._changed()
        blocked = [
            p.blocked_until for p in self.table.pods.values() if p.blocked_until > self._clock()
        ]
        if self._queue and blocked:
            self._wakeup.arm(min(blocked))

    def _dispatch(self) -> None:
        """Bind the head of the queue to free slots, oldest request first."""
        now = self._clock()
        while self._queue:
            pod = self.table.free_pod(now, self.parallel)
            if pod is None:
                return
            waiter = self._queue.popleft()
            if waiter.future.done():
                continue
            self._bind(pod)
            waiter.future.set_result(pod)
