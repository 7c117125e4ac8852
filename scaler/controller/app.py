"""``scaler run``: wire the boundaries, serve /metrics and health, run until SIGTERM.

Every background task has an owner (``Service``, in ``scaler.controller.service`` with
the health it reports), a name, and is cancelled and awaited on shutdown; the Lease is
released so another replica takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from scaler.config import ScalerConfig
from scaler.controller.loop import Controller
from scaler.controller.metrics import ControllerMetrics, build_metrics
from scaler.controller.push import PushFeed, push_feeds
from scaler.controller.reading import readers_for
from scaler.controller.reading.batch import PrometheusBatch
from scaler.controller.service import Service
from scaler.controller.target import TargetReconciler
from scaler.controller.victims import VictimMarker
from scaler.errors import ConfigError, quote
from scaler.kube.cache import CachedActuator, pick_scope, watches_for
from scaler.kube.client import api_client
from scaler.kube.leader import LeaderElector
from scaler.logs import FIELDS
from scaler.serving.connections import raise_fd_limit
from scaler.sources.prometheus import PrometheusSource
from scaler.sources.proxies import ProxyScraper

log = logging.getLogger("scaler.run")

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
KUBE_REQUEST_TIMEOUT = 5.0
"""Seconds for one Kubernetes API call; a hung API server must not stall the loop."""
KUBE_CALL_CONNECTIONS = 32
"""Connections beside the watches: the lease, scale PATCHes, Events and pod annotations
of a poll, which must never wait behind the watches (a lease renewal that waits loses
the leadership)."""
CACHE_SYNC_WAIT = 5.0
"""Seconds the loop waits at start for the Kubernetes caches' first lists."""


def lease_namespace(config: ScalerConfig) -> str:
    """The Lease lives in the configured namespace, else scaler's own."""
    if config.leader_election.namespace:
        return config.leader_election.namespace
    if env := os.environ.get("POD_NAMESPACE"):
        return env
    with contextlib.suppress(OSError):
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip()
    return "default"


def identity() -> str:
    """Unique per process: the pod name plus a random suffix."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}-{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def serving(
    config: ScalerConfig, *, kubeconfig: str | None = None
) -> AsyncIterator[tuple[Service, int]]:
    """Run the controller and its HTTP endpoints; yield the service and the bound port."""
    registry = CollectorRegistry()
    metrics = build_metrics(registry, config)
    namespaces = _namespaces(config)
    scope = pick_scope(config.watch_scope.value, len(namespaces))
    connections = watches_for(scope, len(namespaces)) + KUBE_CALL_CONNECTIONS
    async with (
        aiohttp.ClientSession() as session,
        api_client(kubeconfig, connections=connections) as api,
    ):
        source = PrometheusSource(
            session, config.prometheus_url, timeout=config.timeout, staleness=config.staleness
        )
        # One query per metric shape per tick for the due targets (issue 16).
        batch = PrometheusBatch(source, config.targets)
        actuator = CachedActuator(
            api, namespaces, request_timeout=KUBE_REQUEST_TIMEOUT, scope=scope
        )
        scraper = ProxyScraper(session, timeout=config.timeout / 2)
        victims = VictimMarker(scraper, actuator)
        elector = _elector(config, api, metrics)
        is_leader: Callable[[], bool] = _always if elector is None else lambda: elector.is_leader
        if elector is None:
            metrics.leader.set(1)
        feeds = {
            target.key: push_feeds(target, config, session, metrics) for target in config.targets
        }
        reconcilers = [
            TargetReconciler(
                target,
                config=config,
                readers=readers_for(
                    target, source=batch, metrics=metrics, scraper=scraper, feeds=feeds[target.key]
                ),
                # Utilization over this container's request only, as the HPA's
                # ContainerResource: a sidecar's request would dilute it.
                actuator=actuator.with_container(target.container),
                metrics=metrics,
                is_leader=is_leader,
                victims=victims,
            )
            for target in config.targets
        ]
        controller = Controller(
            reconcilers, metrics=metrics, push_min_interval=config.push_min_interval, batch=batch
        )
        service = Service(config, controller, metrics)
        app = web.Application()
        app.router.add_get("/metrics", make_aiohttp_handler(registry))
        app.router.add_get("/healthz", service.healthz)
        app.router.add_get("/readyz", service.readyz)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            await _listen(runner, config)
            port = _bound_port(runner)
            _spawn(service, actuator, feeds, elector)
            log.info(
                "scaler run started",
                extra={
                    FIELDS: {
                        "targets": [t.key for t in config.targets],
                        "mode": config.mode.value,
                        "watch_scope": scope,
                        "port": port,
                        "prometheus": config.prometheus_url,
                    }
                },
            )
            yield service, port
        finally:
            await service.stop()
            if elector is not None:
                await _release(elector)
            await asyncio.shield(runner.cleanup())


def _spawn(
    service: Service,
    actuator: CachedActuator,
    feeds: Mapping[str, Mapping[str, PushFeed]],
    elector: LeaderElector | None,
) -> None:
    """Start the background tasks: the caches' informers, the loop (once the caches
    have listed), the push feeds and the leader election; changes wake the loop."""
    controller = service.controller
    for cache in actuator.caches.values():
        cache.on_wake = controller.wake  # with the target's key, namespace/name
        for name, loop in cache.runs().items():
            service.spawn(loop, name)
    service.spawn(_when_synced(actuator, controller.run), "controller-loop")
    for key, by_metric in feeds.items():
        for name, feed in by_metric.items():
            feed.on_change = functools.partial(controller.wake, key)
            service.spawn(feed.run(), f"push-{key}-{name}")
    if elector is not None:
        service.spawn(elector.run(), "leader-election")


async def _listen(runner: web.AppRunner, config: ScalerConfig) -> None:
    """Serve /metrics and health at metricsHost:metricsPort; a port in use or an
    address this host does not have is the configuration's fault (exit 2)."""
    host, port = config.metrics_host, config.metrics_port
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        # aiohttp rewords the errno into a sentence that repeats the address.
        errno = 0 if isinstance(error, socket.gaierror) else error.errno or 0
        reason = os.strerror(errno) if errno > 0 else (error.strerror or str(error))
        raise ConfigError(
            [f"metricsHost, metricsPort: cannot listen on {quote(host)} port {port}: {reason}"]
        ) from error


def _namespaces(config: ScalerConfig) -> dict[str, list[str]]:
    """Namespace → the Deployments targets name there."""
    names: dict[str, list[str]] = {}
    for target in config.targets:
        names.setdefault(target.namespace, []).append(target.deployment)
    return names


async def _when_synced(actuator: CachedActuator, loop: Callable[[], Awaitable[None]]) -> None:
    """Run ``loop`` once the caches have listed, or after ``CACHE_SYNC_WAIT`` seconds
    anyway (a target whose cache never syncs holds, and says so each poll)."""
    await actuator.wait_synced(CACHE_SYNC_WAIT)
    await loop()


def _always() -> bool:
    return True


def _elector(config: ScalerConfig, api: Any, metrics: ControllerMetrics) -> LeaderElector | None:
    settings = config.leader_election
    if not settings.enabled:
        return None

    def changed(leading: bool) -> None:
        metrics.leader.set(1 if leading else 0)
        log.info("leadership %s", "acquired" if leading else "lost")

    return LeaderElector(
        api,
        namespace=lease_namespace(config),
        name=settings.lease_name,
        identity=identity(),
        lease_duration=settings.lease_duration_seconds,
        retry_period=settings.retry_period_seconds,
        on_change=changed,
    )


async def _release(elector: LeaderElector) -> None:
    try:
        await elector.release()
    except Exception as error:  # shutting down: log and go on
        log.warning("could not release the lease: %s", error)


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the HTTP server is not bound to a TCP port")


async def run(config: ScalerConfig, *, kubeconfig: str | None = None) -> int:
    """Serve until SIGTERM or SIGINT (exit 0) or a background task dies (exit 1)."""
    # Every watch holds a socket: 1,000 namespaces are 3,000 of them, past the usual
    # soft limit of 1,024 file descriptors (the hard limit is the container's).
    raise_fd_limit()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serving(config, kubeconfig=kubeconfig) as (service, _):
        stopped = asyncio.create_task(stop.wait(), name="wait-for-signal")
        failed = asyncio.create_task(service.failed.wait(), name="wait-for-failure")
        await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stopped, failed):
            task.cancel()
        await asyncio.gather(stopped, failed, return_exceptions=True)
        code = 1 if service.failed.is_set() else 0
    log.info("scaler run stopped", extra={FIELDS: {"exit_code": code}})
    return code
