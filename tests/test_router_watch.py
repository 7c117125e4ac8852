"""``GET /scaler/v1/queue/watch``: the router's queue pushed as NDJSON, over loopback.

A real router app in the test's loop (its discovery driven by the test), real HTTP
streams; the test moves the dispatcher itself, so every change is one it made. Waits
are real but bounded (the stream's own timing is what is under test).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from scaler.router.app import ROUTER, build_app
from scaler.router.dispatch import Pod
from scaler.router.endpoints import Endpoint, EndpointState
from scaler.router.handlers import Router
from scaler.router.settings import RouterSettings
from scaler.router.watch import WATCH_PATH, WatchBounds
from tests.support.router_rig import ManualDiscovery

LINE_TIMEOUT = 5.0


class Running:
    def __init__(self, router: Router, url: str, registry: CollectorRegistry) -> None:
        self.router = router
        self.url = url
        self.registry = registry

    def gauge(self, name: str) -> float:
        value = self.registry.get_sample_value(name)
        assert value is not None
        return value

    async def until(self, predicate: Any, timeout: float = LINE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_router(pods: int = 0, **settings: Any) -> AsyncIterator[Running]:
    """A router whose ``pods`` are made-up addresses: nothing here talks to a pod."""
    snapshot = {
        f"pod-{i}": Endpoint(f"pod-{i}", f"http://127.0.0.1:{9 + i}", EndpointState.READY)
        for i in range(pods)
    }
    registry = CollectorRegistry()
    settings = {"endpoints": ["http://unused:1"], **settings}
    app = build_app(RouterSettings(**settings), ManualDiscovery(snapshot), registry)
    server = TestServer(app, host="127.0.0.1", handler_cancellation=True)
    await server.start_server()
    try:
        yield Running(app[ROUTER], str(server.make_url(WATCH_PATH)), registry)
    finally:
        await server.close()


async def next_line(response: aiohttp.ClientResponse) -> dict[str, int]:
    async with asyncio.timeout(LINE_TIMEOUT):
        line = await response.content.readline()
    assert line.endswith(b"\n"), line
    parsed: dict[str, int] = json.loads(line)
    return parsed


async def test_the_first_line_is_the_current_state_at_once_then_every_change() -> None:
    async with running_router(pods=1) as rig, aiohttp.ClientSession() as session:
        dispatcher = rig.router.dispatcher
        held = await dispatcher.acquire()  # one in flight before anyone watches
        async with session.get(rig.url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/x-ndjson"
            assert await next_line(response) == {"queued": 0, "in_flight": 1, "seq": 1}
            waiting = asyncio.create_task(dispatcher.acquire())
            assert await next_line(response) == {"queued": 1, "in_flight": 1, "seq": 2}
            assert rig.gauge("scaler_router_queue_depth") == 1
            assert rig.gauge("scaler_router_requests_in_flight") == 1
            dispatcher.release(held)  # the waiter takes the slot: queued 0, in flight 1
            assert await next_line(response) == {"queued": 0, "in_flight": 1, "seq": 3}
            dispatcher.release(await waiting)
            assert await next_line(response) == {"queued": 0, "in_flight": 0, "seq": 4}


async def test_a_thousand_changes_a_second_are_coalesced_and_the_last_line_is_exact() -> None:
    async with (
        running_router(pods=16, parallel=64) as rig,
        aiohttp.ClientSession() as session,
        session.get(rig.url) as response,
    ):
        dispatcher = rig.router.dispatcher
        lines = [await next_line(response)]
        held: list[Pod] = []
        started = time.monotonic()
        for _ in range(100):  # 1,000 changes in about a second, ten each 10 ms
            for _ in range(10):
                held.append(await dispatcher.acquire())
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        while lines[-1]["in_flight"] != 1000:
            lines.append(await next_line(response))
        assert lines[-1] == {"queued": 0, "in_flight": 1000, "seq": len(lines)}
        assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
        assert len(lines) <= 1 + elapsed / 0.01 + 3  # one per 10 ms, plus the edges
        assert len(lines) < 200
        for pod in held:
            dispatcher.release(pod)


async def test_a_quiet_queue_is_sent_again_every_second() -> None:
    async with (
        running_router() as rig,
        aiohttp.ClientSession() as session,
        session.get(rig.url) as response,
    ):
        assert await next_line(response) == {"queued": 0, "in_flight": 0, "seq": 1}
        started = time.monotonic()
        assert await next_line(response) == {"queued": 0, "in_flight": 0, "seq": 2}
        assert 0.9 <= time.monotonic() - started <= 1.5


async def test_at_most_64_subscribers_and_the_gauge_counts_them() -> None:
    async with running_router() as rig, aiohttp.ClientSession() as session:
        async with contextlib.AsyncExitStack() as streams:
            for _ in range(64):
                response = await streams.enter_async_context(session.get(rig.url))
                assert (await next_line(response))["seq"] == 1
            assert rig.gauge("scaler_router_queue_subscribers") == 64
            async with session.get(rig.url) as refused:
                assert refused.status == 503
                assert "at most 64" in (await refused.json())["error"]
        await rig.until(lambda: rig.gauge("scaler_router_queue_subscribers") == 0)
        async with session.get(rig.url) as again:
            assert again.status == 200
        async with session.post(rig.url) as wrong:  # the router's own path, never a pod's
            assert wrong.status == 405


async def test_a_subscriber_that_stops_reading_is_dropped_and_the_others_go_on() -> None:
    async with running_router() as rig, aiohttp.ClientSession() as session:
        # Fast lines so the kernel's buffers fill in about a second, not minutes.
        rig.router.watch.bounds = WatchBounds(heartbeat=0.001, min_interval=0.001, drop_after=0.2)
        loop = asyncio.get_running_loop()
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        stalled.setblocking(False)
        with stalled:
            host, port = rig.url.split("/")[2].split(":")
            await loop.sock_connect(stalled, (host, int(port)))
            head = f"GET {WATCH_PATH} HTTP/1.1\r\nHost: {host}\r\n\r\n"
            await loop.sock_sendall(stalled, head.encode())
            async with session.get(rig.url) as reading:
                await rig.until(lambda: rig.gauge("scaler_router_queue_subscribers") == 2)
                await rig.until(
                    lambda: rig.gauge("scaler_router_queue_subscribers") == 1, timeout=20
                )
                seq = (await next_line(reading))["seq"]
                assert (await next_line(reading))["seq"] > seq  # the reader's stream goes on
            assert await _ends(loop, stalled)


async def _ends(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bool:
    """Read what was buffered until the connection ends (EOF or reset)."""
    async with asyncio.timeout(LINE_TIMEOUT):
        while True:
            try:
                if not await loop.sock_recv(sock, 65536):
                    return True
            except ConnectionResetError:
                return True


async def test_a_stopping_router_ends_the_streams_and_refuses_new_ones() -> None:
    async with running_router() as rig, aiohttp.ClientSession() as session:
        async with session.get(rig.url) as response:
            assert (await next_line(response))["seq"] == 1
            await rig.router.drain()
            async with asyncio.timeout(LINE_TIMEOUT):
                assert await response.content.read() == b""  # the stream ended cleanly
        async with session.get(rig.url) as refused:
            assert refused.status == 503
        rig.router.stop_draining()
