"""A router as the controller's push path sees it: ``GET /scaler/v1/queue/watch``
(the shared design's wire format) beside its ``/metrics`` (the poll's direct read), with
switches for the ways a stream goes wrong: refused, dropped, silent, a bad line.

Unlike the real router it writes every change (no 10 ms coalescing), so a storm
reaches the controller whole: the harder case for it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

WATCH_PATH = "/scaler/v1/queue/watch"


class QueueStreamStandIn:
    """One router's queue; every subscriber gets each change as a line."""

    def __init__(self, *, heartbeat: float = 1.0) -> None:
        self.queued = 0
        self.in_flight = 0
        self.seq = 0
        self.heartbeat = heartbeat
        self.refuse = 0  # answer the next N subscriptions with 503
        self.silent = False  # send the first line, then nothing (a hung router)
        self.subscriptions = 0  # answered with 200
        self.streams: set[asyncio.Queue[bytes | None]] = set()

    def set(self, queued: int, in_flight: int = 0) -> None:
        """The router's queue changed: one line to every subscriber."""
        self.queued, self.in_flight = queued, in_flight
        self._send(self._line())

    def send_raw(self, raw: bytes) -> None:
        """A line no router writes, as it comes."""
        self._send(raw)

    def drop(self) -> None:
        """End every stream (a router that stops)."""
        for queue in self.streams:
            queue.put_nowait(None)

    def _line(self) -> bytes:
        self.seq += 1
        line = {"queued": self.queued, "in_flight": self.in_flight, "seq": self.seq}
        return json.dumps(line).encode() + b"\n"

    def _send(self, raw: bytes) -> None:
        if self.silent:
            return
        for queue in self.streams:
            queue.put_nowait(raw)

    async def watch(self, request: web.Request) -> web.StreamResponse:
        if self.refuse > 0:
            self.refuse -= 1
            return web.Response(status=503, text="busy")
        self.subscriptions += 1
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.streams.add(queue)
        try:
            await response.write(self._line())
            while True:
                try:
                    raw = await asyncio.wait_for(queue.get(), self.heartbeat)
                except TimeoutError:
                    if self.silent:
                        continue
                    raw = self._line()
                if raw is None:
                    break
                await response.write(raw)
        finally:
            self.streams.discard(queue)
        return response

    async def metrics(self, request: web.Request) -> web.Response:
        text = (
            f"scaler_router_queue_depth {self.queued}\n"
            f"scaler_router_requests_in_flight {self.in_flight}\n"
        )
        return web.Response(text=text)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(WATCH_PATH, self.watch)
        app.router.add_get("/metrics", self.metrics)
        return app


@asynccontextmanager
async def queue_stream_stand_ins(
    count: int, *, first_ip: int = 60, heartbeat: float = 1.0
) -> AsyncIterator[tuple[list[QueueStreamStandIn], list[str], int]]:
    """``count`` routers on 127.0.0.first_ip, ... and one port, in this loop: the
    routers, their addresses and the port."""
    routers, runners, addresses, port = [], [], [], 0
    try:
        for i in range(count):
            router = QueueStreamStandIn(heartbeat=heartbeat)
            runner = web.AppRunner(router.app(), shutdown_timeout=0.1)
            await runner.setup()
            runners.append(runner)
            address = f"127.0.0.{first_ip + i}"
            await web.TCPSite(runner, address, port).start()
            port = runner.addresses[0][1]
            routers.append(router)
            addresses.append(address)
        yield routers, addresses, port
    finally:
        for router in routers:
            router.drop()
        for runner in runners:
            await runner.cleanup()
