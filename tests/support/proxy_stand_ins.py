"""Stand-ins for the pods' proxies: their /metrics, as prometheus_client renders it,
each on its own loopback address (127.0.0.N) and one shared port, as pods are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.aiohttp import make_aiohttp_handler


class StandIn:
    """A proxy's /metrics, as prometheus_client renders it, on 127.0.0.N."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queue = Gauge("ollama_proxy_queue_depth", "q", registry=self.registry)
        self.in_flight = Gauge("ollama_proxy_requests_in_flight", "f", registry=self.registry)
        Gauge("ollama_proxy_queue_depth_max", "a longer name", registry=self.registry).set(99)
        self.delay = 0.0
        self.status = 200

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.Response(status=self.status)
        return await make_aiohttp_handler(self.registry)(request)


@asynccontextmanager
async def stand_ins(
    count: int, *, first_ip: int = 20
) -> AsyncIterator[tuple[list[StandIn], list[str]]]:
    """``count`` proxies on 127.0.0.first_ip, .first_ip+1, ... all on one port, as pods
    of a Deployment are."""
    runners, proxies, urls = [], [], []
    port = 0
    for i in range(count):
        proxy = StandIn()
        app = web.Application()
        app.router.add_get("/metrics", proxy.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, f"127.0.0.{first_ip + i}", port).start()
        port = runner.addresses[0][1]
        runners.append(runner)
        proxies.append(proxy)
        urls.append(f"http://127.0.0.{first_ip + i}:{port}/metrics")
    try:
        yield proxies, urls
    finally:
        for runner in runners:
            await runner.cleanup()
