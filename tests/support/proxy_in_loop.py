"""A ``scaler proxy`` app served in the test's own loop on a free loopback port, with
handler cancellation on, as ``scaler proxy`` runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from scaler.proxy.app import PROXY, build_app
from scaler.proxy.handlers import Proxy
from scaler.proxy.settings import ProxySettings


@dataclass(frozen=True)
class InLoop:
    url: str
    port: int
    proxy: Proxy
    server: web.Server
    """aiohttp's: ``requests_count`` is how many request heads it has parsed."""


@asynccontextmanager
async def proxy_in_loop(
    settings: ProxySettings, registry: CollectorRegistry | None = None
) -> AsyncIterator[InLoop]:
    app = build_app(settings, registry)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        assert runner.server is not None
        yield InLoop(f"http://127.0.0.1:{port}", port, app[PROXY], runner.server)
    finally:
        await runner.cleanup()
