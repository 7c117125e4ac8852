"""``GET /scaler/v1/queue/watch``: the router's queue, pushed to the controller as it moves.

One NDJSON line per change, ``{"queued": q, "in_flight": f, "seq": n}``, where q and f
are what ``scaler_router_queue_depth`` and ``scaler_router_requests_in_flight`` report
at that moment and ``seq`` counts the stream's lines from 1. The current state is sent
at once on connect; then changes, coalesced to at most one line per ``min_interval``
per subscriber, the latest state always sent (the trailing edge), so a burst costs at
most a hundred lines a second and its last line is the final state. With nothing to
say for ``heartbeat`` seconds the current state is sent again, so a consumer can tell a
stalled stream (no line for 3 s) from a quiet queue. At most ``max_subscribers``
streams (beyond: 503). A subscriber that stops reading is never sent a backlog: a line
is written only once the previous one left for the kernel, and a subscriber that has
not taken one for ``drop_after`` seconds is dropped. A stopping router ends every
stream (the consumer falls back to polling and subscribes to another router).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from scaler.proxy.body import json_error
from scaler.router.dispatch import Dispatcher

WATCH_PATH = "/scaler/v1/queue/watch"
SEND_BUFFER = 16 * 1024
"""Bytes of kernel send buffer asked for each stream: lines are tens of bytes, and a
small buffer lets a reader that stopped be noticed in seconds rather than megabytes."""


@dataclass(frozen=True, slots=True)
class WatchBounds:
    """Seconds and counts of the stream (the shared design's wire format)."""

    max_subscribers: int = 64
    min_interval: float = 0.01
    heartbeat: float = 1.0
    drop_after: float = 3.0


class QueueWatch:
    """Every subscriber's stream; the dispatcher's listener wakes them. A change costs a
    set of ``asyncio.Event``s, no task: a subscriber that is pausing between lines (the
    coalescing) finds its event already set and sends the latest state once."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bounds: WatchBounds = WatchBounds(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dispatcher = dispatcher
        self.bounds = bounds
        self._clock = clock
        self._wakeups: set[asyncio.Event] = set()
        self._closed = False
        dispatcher.listeners.append(self._changed)

    @property
    def subscribers(self) -> int:
        return len(self._wakeups)

    def _changed(self) -> None:
        for wakeup in self._wakeups:
            wakeup.set()

    def close(self) -> None:
        """The router is stopping: end every stream, refuse new ones."""
        self._closed = True
        self._changed()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Any method on the path comes here: it is the router's own, never a pod's."""
        if request.method != "GET":
            return json_error(405, f"{WATCH_PATH} takes GET only")
        if self._closed:
            return json_error(503, "this router is stopping")
        if len(self._wakeups) >= self.bounds.max_subscribers:
            limit = self.bounds.max_subscribers
            return json_error(503, f"too many queue watchers (at most {limit})")
        wakeup = asyncio.Event()
        self._wakeups.add(wakeup)
        try:  # a subscriber that leaves cancels us (handler_cancellation), or resets
            return await self._stream(request, wakeup)
        finally:
            self._wakeups.discard(wakeup)

    async def _stream(self, request: web.Request, wakeup: asyncio.Event) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-store"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        _small_send_buffer(request)
        line = _Line(self._dispatcher, self._clock)
        while not self._closed:
            wakeup.clear()  # before reading the state: a change after this wakes us
            if line.due(self.bounds.heartbeat):
                if not await line.send(request, response, self.bounds.drop_after):
                    return response  # dropped: its connection is aborted
                await asyncio.sleep(self.bounds.min_interval)  # the coalescing pause
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(line.quiet_for(self.bounds.heartbeat)):
                    await wakeup.wait()
        await response.write_eof()
        return response


class _Line:
    """One subscriber's stream position: what it was last sent, when, its ``seq``."""

    def __init__(self, dispatcher: Dispatcher, clock: Callable[[], float]) -> None:
        self._dispatcher = dispatcher
        self._clock = clock
        self.seq = 0
        self.sent: tuple[int, int] | None = None
        self.sent_at = 0.0
        self.stuck_since: float | None = None

    def state(self) -> tuple[int, int]:
        return self._dispatcher.queued, self._dispatcher.in_flight

    def due(self, heartbeat: float) -> bool:
        return self.state() != self.sent or self._clock() - self.sent_at >= heartbeat

    def quiet_for(self, heartbeat: float) -> float:
        return max(0.0, self.sent_at + heartbeat - self._clock())

    async def send(self, request: web.Request, response: web.StreamResponse, drop: float) -> bool:
        """Write the current state, unless the last line is still in our buffer (the
        reader is behind): then skip, and past ``drop`` seconds so, drop it. False when
        the subscriber is gone or dropped."""
        transport = request.transport
        if transport is None or transport.is_closing():
            return False
        now = self._clock()
        if transport.get_write_buffer_size():
            self.stuck_since = self.stuck_since if self.stuck_since is not None else now
            if now - self.stuck_since < drop:
                return True
            transport.abort()
            return False
        self.stuck_since = None
        queued, in_flight = self.sent = self.state()
        self.seq += 1
        self.sent_at = now
        text = json.dumps({"queued": queued, "in_flight": in_flight, "seq": self.seq})
        await response.write(text.encode() + b"\n")
        return True


def _small_send_buffer(request: web.Request) -> None:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
