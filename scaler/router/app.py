"""The router's aiohttp app: the route table and what the app owns.

Which path goes to which handler (handlers.py: the shared queue for inference,
pass-through for the rest), and the discovery and upstream sessions that run while
the app serves and through its drain (server.py serves it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from scaler.proxy.forward import upstream_sessions
from scaler.proxy.routes import INFERENCE_PATHS
from scaler.router.dispatch import Dispatcher
from scaler.router.handlers import Router
from scaler.router.settings import RouterSettings
from scaler.router.watch import WATCH_PATH

ROUTER = web.AppKey("router", Router)
Discovery = Callable[[Dispatcher], AbstractAsyncContextManager[Callable[[], bool]]]
"""Feeds a dispatcher the pods' snapshots while entered; gives a ``synced`` predicate."""


def build_app(
    settings: RouterSettings, discovery: Discovery, registry: CollectorRegistry | None = None
) -> web.Application:
    """The router as an aiohttp app. The app owns the discovery (``cleanup_ctx``): it
    runs while the app serves, and through the drain."""
    registry = registry or CollectorRegistry()
    dispatcher = Dispatcher(
        parallel=settings.parallel,
        max_queue=settings.max_queue,
        no_pod_wait=settings.no_pod_wait,
        cold_start_wait=settings.cold_start_wait,
        clock=time.monotonic,
        schedule=lambda delay, callback: asyncio.get_running_loop().call_later(delay, callback),
    )
    synced: list[Callable[[], bool]] = []
    router = Router(settings, registry, dispatcher, lambda: bool(synced) and synced[0]())
    app = web.Application(client_max_size=settings.max_body)

    async def pods(app: web.Application) -> AsyncIterator[None]:
        async with discovery(dispatcher) as ready:
            synced.append(ready)
            yield

    async def sessions(app: web.Application) -> AsyncIterator[None]:
        # As in the proxy (upstream_sessions): pooled to the pods, fresh for streamed
        # bodies and the models' writer.
        async with upstream_sessions(app, settings.keepalive()):
            yield

    async def stop_draining(app: web.Application) -> None:
        router.stop_draining()

    app.cleanup_ctx.append(sessions)
    app.cleanup_ctx.append(pods)
    app.on_cleanup.append(stop_draining)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    app.router.add_get("/healthz", router.healthz)
    app.router.add_get("/readyz", router.readyz)
    app.router.add_route("*", WATCH_PATH, router.watch.handle)
    for path in sorted(INFERENCE_PATHS):
        app.router.add_post(path, router.inference)
    app.router.add_route("*", "/{tail:.*}", router.passthrough)
    app[ROUTER] = router
    return app
