"""Run ``scaler router``: the app, its discovery of the pods, and a graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from scaler.router.app import ROUTER, Discovery, build_app
from scaler.router.dispatch import Dispatcher
from scaler.router.endpoints import static_snapshot
from scaler.router.settings import RouterSettings
from scaler.serving import serve_until_cancelled

log = logging.getLogger("scaler.router")

DRAIN_TIMEOUT = 3600.0
"""Seconds a stopping router lets queued and streaming requests finish (the pod's
terminationGracePeriodSeconds is the real bound)."""


def static_discovery(urls: list[str]) -> Discovery:
    """``--endpoint`` URLs: always these pods, always ready."""

    @contextlib.asynccontextmanager
    async def discovery(dispatcher: Dispatcher) -> AsyncIterator[Callable[[], bool]]:
        dispatcher.update(static_snapshot(urls))
        yield lambda: True

    return discovery


def slice_discovery(settings: RouterSettings) -> Discovery:
    """The Service's EndpointSlices, watched; the watch task is cancelled and awaited
    on exit."""
    from scaler.kube.client import api_client
    from scaler.router.discovery import EndpointSliceWatch

    service = settings.service
    assert service is not None

    @contextlib.asynccontextmanager
    async def discovery(dispatcher: Dispatcher) -> AsyncIterator[Callable[[], bool]]:
        async with api_client(settings.kubeconfig) as api:
            watch = EndpointSliceWatch(
                api,
                namespace=settings.namespace,
                service=service,
                port_name=settings.port_name,
                on_change=dispatcher.update,
            )
            task = asyncio.create_task(watch.run(), name="endpointslice-watch")
            try:
                yield lambda: watch.synced
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return discovery


async def serve(settings: RouterSettings) -> None:
    """Serve until cancelled (the CLI cancels on SIGTERM), then drain (``Router.drain``:
    new requests that would wait get 503, the queue is served until ``drain_timeout``),
    stop listening, let streaming requests finish, then stop discovery."""
    discovery = (
        static_discovery(settings.endpoints) if settings.endpoints else slice_discovery(settings)
    )
    where = ", ".join(settings.endpoints) or f"service {settings.namespace}/{settings.service}"
    app = build_app(settings, discovery)
    await serve_until_cancelled(
        app,
        host=settings.host,
        port=settings.port,
        limits=settings.connection_limits(),
        log=log,
        what=f"scaler router for {where}",
        drain=app[ROUTER].drain,
        shutdown_timeout=DRAIN_TIMEOUT,
    )
