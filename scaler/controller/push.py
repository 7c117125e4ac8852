"""The pushed queue: one stream per router of a metric, the latest line of each.

A ``PushFeed`` follows every address the metric's ``direct.host`` resolves to (looked
up again every poll interval: a new router gets a stream, a gone one loses it) and
keeps each router's latest line. When the metric's total changes it calls
``on_change``, so the controller decides at once rather than at the next poll. A
stream that breaks is logged once, counted, and followed again with backoff; polling
reads the metric meanwhile (the ``Pushed`` path fails, the poll path answers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp

from scaler.config import ScalerConfig, TargetConfig
from scaler.config.direct import PUSHED_SERIES, DirectConfig
from scaler.controller.metrics import ControllerMetrics
from scaler.kube.informer import Backoff
from scaler.logs import FIELDS
from scaler.policy import TotalValue
from scaler.sources.base import MetricUnavailable, plausible
from scaler.sources.resolver import Resolver, SystemResolver, one_family
from scaler.sources.router_push import STALE_AFTER, PushStale, QueueLine, follow, watch_url

log = logging.getLogger("scaler.controller")

FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0
"""Seconds before following a broken stream again: 0.1 doubling to 5, reset by a
good line, so a restarting router is back within a second or two and a dead one
costs a connection attempt every 5 s."""
BACKOFF = Backoff(FIRST_BACKOFF, MAX_BACKOFF)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class Stream:
    """One router's stream: its latest line and when it came (``None``: none yet,
    or the stream broke since)."""

    task: asyncio.Task[None]
    line: QueueLine | None = None
    at: float = 0.0


class PushFeed:
    """The streams of one metric of one target. ``run`` owns them: cancel it to stop
    every stream."""

    def __init__(
        self,
        direct: DirectConfig,
        *,
        session: aiohttp.ClientSession,
        resolver: Resolver,
        labels: tuple[str, str, str],  # namespace, deployment, metric
        metrics: ControllerMetrics,
        refresh_every: float,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        stale_after: float = STALE_AFTER,
    ) -> None:
        assert direct.host is not None, "only routers push"
        self.host, self.port = direct.host, direct.port
        self.fields = tuple(PUSHED_SERIES[name] for name in direct.series)
        self.session, self.resolver = session, resolver
        self.labels, self.metrics = labels, metrics
        self.refresh_every, self.clock, self.sleep = refresh_every, clock, sleep
        self.stale_after = stale_after
        self.streams: dict[str, Stream] = {}
        self.leaving: set[asyncio.Task[None]] = set()  # streams of routers gone, ending
        self.on_change: Callable[[], None] = _nothing
        self.last_total: float | None = None

    async def run(self) -> None:
        """Follow the routers until cancelled; then stop every stream."""
        try:
            while True:
                await self.refresh()
                await self.sleep(self.refresh_every)
        finally:
            await self.close()

    async def refresh(self) -> None:
        """Follow every address the host has now, and only those. A lookup that fails
        for now (not "no such name") keeps the streams there are."""
        try:
            addresses = set(one_family(await self.resolver.resolve(self.host)))
        except MetricUnavailable as error:
            if error.kind != "empty":
                log.debug("cannot look up %s: %s", self.host, error)
                return
            addresses = set()
        for address in self.streams.keys() - addresses:
            task = self.streams.pop(address).task
            task.cancel()
            self.leaving.add(task)  # awaited by close, if still ending then
            task.add_done_callback(self.leaving.discard)
        for address in sorted(addresses - self.streams.keys()):
            task = asyncio.create_task(self._follow(address), name=f"push-{address}")
            self.streams[address] = Stream(task)
        self._live_changed()

    async def close(self) -> None:
        tasks = [stream.task for stream in self.streams.values()] + list(self.leaving)
        self.streams.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._live_changed()

    def total(self, now: float) -> TotalValue:
        """The sum over the routers of their latest lines, at ``now``; ``PushStale``
        unless every router has a live stream (else the sum would under-count)."""
        if not self.streams:
            raise PushStale(f"{self.host}: no router to follow")
        total = 0
        for address, stream in self.streams.items():
            if stream.line is None or now - stream.at > self.stale_after:
                raise PushStale(f"{address}: no live stream")
            total += sum(getattr(stream.line, name) for name in self.fields)
        return TotalValue(plausible(float(total), f"the routers' pushed {self.labels[2]} is"))

    async def _follow(self, address: str) -> None:
        url = watch_url(address, self.port)
        stream = self.streams[address]
        failures = 0  # breaks in a row with no line between them
        while True:
            try:
                await follow(
                    self.session, url, self._receiver(stream), stale_after=self.stale_after
                )
            except MetricUnavailable as error:
                if stream.line is not None:  # lines came since the last break
                    failures = 0
                self._broke(url, error, tell=failures == 0)
            failures += 1
            stream.line = None
            self._live_changed()
            await self.sleep(BACKOFF.delay(failures))

    def _receiver(self, stream: Stream) -> Callable[[QueueLine], None]:
        def received(line: QueueLine) -> None:
            fresh = stream.line is None
            stream.line, stream.at = line, self.clock()
            if fresh:
                self._live_changed()
            self._changed()

        return received

    def _changed(self) -> None:
        """Wake the decision when the total moved (a heartbeat does not)."""
        try:
            total = self.total(self.clock()).value
        except MetricUnavailable:
            return  # another router has no live stream: the poll decides
        if total != self.last_total:
            self.last_total = total
            self.on_change()

    def _broke(self, url: str, error: MetricUnavailable, *, tell: bool) -> None:
        """Count every failed attempt; warn once per break, not at every retry."""
        namespace, deployment, metric = self.labels
        self.metrics.push_errors.labels(namespace, deployment, metric, error.kind).inc()
        fields = {FIELDS: {"target": f"{namespace}/{deployment}", "metric": metric, "url": url}}
        if tell:
            log.warning("push stream broken, polling until it is back: %s", error, extra=fields)
        else:
            log.debug("push stream still broken: %s", error, extra=fields)

    def _live_changed(self) -> None:
        live = sum(1 for stream in self.streams.values() if stream.line is not None)
        self.metrics.push_streams.labels(*self.labels).set(live)


def push_feeds(
    target: TargetConfig,
    config: ScalerConfig,
    session: aiohttp.ClientSession,
    metrics: ControllerMetrics,
    *,
    resolver: Resolver | None = None,
) -> dict[str, PushFeed]:
    """A feed for each metric of ``target`` its routers push (``direct.pushed``), by
    name; each looks its routers up again every poll interval."""
    return {
        metric.name: PushFeed(
            metric.direct,
            session=session,
            resolver=resolver or SystemResolver(),
            labels=(target.namespace, target.deployment, metric.name),
            metrics=metrics,
            refresh_every=target.poll_interval or config.poll_interval,
        )
        for metric in target.metrics
        if metric.direct is not None and metric.direct.pushed
    }


def _nothing() -> None:
    """``on_change`` until the controller listens."""


@dataclass(frozen=True, slots=True)
class Pushed:
    """The ``pushed`` read path: the routers' latest lines (see ``PushFeed.total``)."""

    feed: PushFeed

    async def fetch(self, now: float, ready_ips: Sequence[str]) -> TotalValue:
        return self.feed.total(now)
