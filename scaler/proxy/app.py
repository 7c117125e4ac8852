"""The proxy's aiohttp app: the route table, what the app owns, and the server's life.

One Ollama per proxy (a sidecar on localhost). The Service points at the proxy. The
handlers (what one request goes through, the probes, the drain) are handlers.py;
here is only which path goes to which handler, the upstream sessions and the
residency task the app starts and stops, and serving until SIGTERM, then draining.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from scaler.proxy.forward import upstream_sessions
from scaler.proxy.handlers import Proxy
from scaler.proxy.routes import INFERENCE_PATHS
from scaler.proxy.settings import ProxySettings
from scaler.serving import serve_until_cancelled

log = logging.getLogger("scaler.proxy")

AFTER_DRAIN_TIMEOUT = 5.0
"""Seconds handlers still running after the drain (pass-through, or answers past the
drain's timeout) get before they are cancelled: the drain already waited."""


PROXY = web.AppKey("proxy", Proxy)


def build_app(
    settings: ProxySettings, registry: CollectorRegistry | None = None
) -> web.Application:
    """The proxy as an aiohttp app, with its upstream session owned by the app."""
    registry = registry or CollectorRegistry()
    proxy = Proxy(settings, registry)
    app = web.Application(client_max_size=0)  # no limit: bodies over 1 MiB are streamed

    async def upstream_and_residency(app: web.Application) -> AsyncIterator[None]:
        async with upstream_sessions(app, settings.keepalive()) as session:
            if proxy.residency is not None:  # owned here: stopped before the sessions close
                proxy.residency.start(session)
            try:
                yield
            finally:
                if proxy.residency is not None:
                    await proxy.residency.stop()

    app.cleanup_ctx.append(upstream_and_residency)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    app.router.add_get("/healthz", proxy.healthz)
    app.router.add_get("/readyz", proxy.readyz)
    for path in sorted(INFERENCE_PATHS):
        app.router.add_post(path, proxy.inference)
    app.router.add_route("*", "/{tail:.*}", proxy.passthrough)
    app[PROXY] = proxy
    return app


async def serve(settings: ProxySettings) -> None:
    """Serve until cancelled (the CLI cancels on SIGTERM), then drain and exit."""
    app = build_app(settings)
    await serve_until_cancelled(
        app,
        host=settings.host,
        port=settings.port,
        limits=settings.connection_limits(),
        log=log,
        what=f"scaler proxy for {settings.upstream}",
        drain=app[PROXY].drain,
        shutdown_timeout=AFTER_DRAIN_TIMEOUT,
    )
