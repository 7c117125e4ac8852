"""First-in first-out admission into Ollama's ``parallel`` slots, with a bounded queue.

Ollama itself queues excess requests for a loaded model on an unbounded semaphore
(ollama/ollama#7758), invisibly. Here the queue is ours: its depth is the scaling
signal, and beyond ``max_queue`` a request is refused at once instead of waiting
without end.
"""

from __future__ import annotations

import asyncio
from collections import deque

from scaler.errors import ScalerError


class QueueFull(ScalerError):
    """The queue already holds ``max_queue`` requests."""


class Draining(ScalerError):
    """The proxy is stopping: it admits nothing new, and refuses what waits (at once,
    or what still waits when the drain times out)."""


class Admission:
    """``parallel`` slots and a FIFO queue of at most ``max_queue`` waiting requests.

    A waiter that is cancelled (its client went away) leaves the queue and never takes
    a slot; a slot handed to a waiter at the moment it is cancelled is passed on.
    """

    def __init__(self, *, parallel: int, max_queue: int) -> None:
        if parallel < 1 or max_queue < 0:
            raise ValueError(f"parallel {parallel} must be >= 1, max_queue {max_queue} >= 0")
        self.parallel = parallel
        self.max_queue = max_queue
        self.active = 0
        self._closed: str | None = None  # why nothing more is queued (stop_admitting, close)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._idle = asyncio.Event()  # set while nothing holds or waits for a slot
        self._idle.set()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def idle(self) -> None:
        """Return once no request holds or waits for a slot (the drain waits on it)."""
        await self._idle.wait()

    def stop_admitting(self, reason: str) -> None:
        """Queue nothing more: every later request gets Draining at once; the waiters
        keep their places and take the slots as they free up (``close`` refuses them)."""
        self._closed = reason

    def close(self, reason: str) -> None:
        """Admit nothing more: every waiter, and every later request, gets Draining at
        once (a router sends it elsewhere); requests holding a slot run on."""
        self._closed = reason
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Draining(reason))
        if self.active == 0:
            self._idle.set()

    def slot(self) -> Slot:
        """Hold a slot for the body of the ``async with``; raises QueueFull at once
        when the queue is full."""
        return Slot(self)

    async def _acquire(self) -> None:
        if self._closed is not None:
            raise Draining(self._closed)
        if self.active < self.parallel and not self._waiters:
            self.active += 1
            self._idle.clear()
            return
        if len(self._waiters) >= self.max_queue:
            if self.max_queue == 0:  # behind a router, which holds the queue
                raise QueueFull(f"all {self.parallel} slots are taken")
            raise QueueFull(f"the queue of {self.max_queue} requests is full")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release()  # the slot arrived as we were cancelled: pass it on
            elif waiter in self._waiters:  # not if close() took it off already
                self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to it: active stays the same
                return
        self.active -= 1
        if self.active == 0:  # no waiters either: the loop above emptied the queue
            self._idle.set()


class Slot:
    """``async with admission.slot():`` as a plain class: a generator-based context
    manager costs more than the admission itself, on every request."""

    __slots__ = ("_admission",)

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    async def __aenter__(self) -> None:
        await self._admission._acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._admission._release()
