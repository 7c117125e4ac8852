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

from scaler.errors import UsageError, quote
from scaler.serving.connections import ConnectionLimits, start_guarded


async def serve_until_cancelled(
    app: web.Application,
    *,
    host: str,
    port: int,
    limits: ConnectionLimits,
    log: logging.Logger,
    what: str,
    shutdown_timeout: float = 60.0,
    drain: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Listen on ``host:port`` until cancelled (the CLI cancels on SIGTERM), then await
    ``drain`` while still listening (the proxy answers new requests "busy" meanwhile),
    then stop listening and give running handlers ``shutdown_timeout`` seconds to finish.
    Client connections are bounded by ``limits`` (``scaler/serving/connections.py``).
    Raises UsageError when ``host:port`` cannot be listened on."""
    access_log = logging.getLogger("aiohttp.access") if log.isEnabledFor(logging.DEBUG) else None
    try:
        runner, guard = await start_guarded(
            app,
            host=host,
            port=port,
            limits=limits,
            handle_signals=False,
            handler_cancellation=True,
            access_log=access_log,
            shutdown_timeout=shutdown_timeout,
        )
    except (OSError, UnicodeError) as error:  # busy port, unknown or malformed host
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise UsageError(f"cannot listen on {quote(host)} port {port}: {reason}") from error
    try:
        log.info(
            "%s listening on %s:%d (at most %d client connections)", what, host, port, guard.cap
        )
        try:
            await asyncio.Event().wait()
        finally:
            if drain is not None:
                await drain()
    finally:
        await runner.cleanup()
