"""Serve an aiohttp app until cancelled, as ``scaler proxy`` and ``scaler router`` do.

Both sit in every request's path, so the settings here are about cost and endings:
handlers are cancelled when their client disconnects (a queued request leaves the
queue, a running one closes its upstream connection, and Ollama frees the slot), and
there is no access log below debug (formatting and writing a JSON line per request
cost more CPU than forwarding the request, profiled; ``*_requests_total`` counts them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web


async def serve_until_cancelled(
    app: web.Application,
    *,
    host: str,
    port: int,
    log: logging.Logger,
    what: str,
    shutdown_timeout: float = 60.0,
    drain: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Listen on ``host:port`` until cancelled (the CLI cancels on SIGTERM), then await
    ``drain`` while still listening (the proxy answers new requests "busy" meanwhile),
    then stop listening and give running handlers ``shutdown_timeout`` seconds to finish."""
    access_log = logging.getLogger("aiohttp.access") if log.isEnabledFor(logging.DEBUG) else None
    runner = web.AppRunner(
        app,
        handle_signals=False,
        handler_cancellation=True,
        access_log=access_log,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("%s listening on %s:%d", what, host, port)
        try:
            await asyncio.Event().wait()
        finally:
            if drain is not None:
                await drain()
    finally:
        await runner.cleanup()
