"""The one-method ``Reader``, a counted ``ReadPath`` and the ``Fallback`` combinator."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from scaler.controller.metrics import ControllerMetrics
from scaler.logs import FIELDS
from scaler.policy import MetricReading, PodValues, TotalValue, Unavailable
from scaler.sources.base import ImplausibleValue, MetricUnavailable

log = logging.getLogger("scaler.controller")


class Reader(Protocol):
    """One metric of one target, read once per poll."""

    async def read(self, now: float, ready_ips: Sequence[str]) -> MetricReading:
        """The metric at ``now`` (unix seconds). ``ready_ips``: the serving pods' IPs
        at the last observe, for a path that reads the pods themselves. A failure is
        an ``Unavailable`` reading, already counted: never an exception."""
        ...


class ReadPath(Protocol):
    """One place a metric can be read from."""

    async def fetch(self, now: float, ready_ips: Sequence[str]) -> TotalValue | PodValues:
        """As ``Reader.read``, but a failure raises ``MetricUnavailable``."""
        ...


@dataclass(frozen=True, slots=True)
class MetricLabels:
    """Which target and metric a reader's counts and logs are about."""

    key: str  # "namespace/deployment", for the logs
    labels: tuple[str, str]  # (namespace, deployment), for the metric labels
    metric: str
    metrics: ControllerMetrics


class Counted:
    """A ``ReadPath`` as a ``Reader``: each read counted by ``source`` (a metric label:
    "push", "direct" or "prometheus"), each failure by kind and turned into ``Unavailable``.
    A value that cannot be real is also logged, once, until a good read here."""

    def __init__(self, path: ReadPath, *, source: str, at: MetricLabels) -> None:
        self.path = path
        self.source = source
        self.at = at
        self.implausible = False  # the last read here was implausible (logged)

    async def read(self, now: float, ready_ips: Sequence[str]) -> MetricReading:
        try:
            reading = await self.path.fetch(now, ready_ips)
        except MetricUnavailable as error:
            self._failed(error)
            return Unavailable(f"{error.kind}: {error}")
        at = self.at
        at.metrics.metric_reads.labels(*at.labels, at.metric, self.source).inc()
        self.implausible = False
        return reading

    def _failed(self, error: MetricUnavailable) -> None:
        at = self.at
        at.metrics.metric_errors.labels(*at.labels, at.metric, error.kind).inc()
        fields = {FIELDS: {"target": at.key, "metric": at.metric}}
        if isinstance(error, ImplausibleValue) and not self.implausible:
            self.implausible = True
            log.warning(
                "a reading that cannot be real counts as missing (%s): %s",
                self.source,
                error,
                extra=fields,
            )
        # The decision log says why a metric is missing; this says why a path failed
        # when another path served.
        log.debug("%s read failed: %s", self.source, error, extra=fields)


@dataclass(frozen=True, slots=True)
class Fallback:
    """``first``'s reading, or, when it has none, ``second``'s. Each counts its own
    failures: when both fail, both kinds are counted and ``second``'s reason stands."""

    first: Reader
    second: Reader

    async def read(self, now: float, ready_ips: Sequence[str]) -> MetricReading:
        reading = await self.first.read(now, ready_ips)
        if isinstance(reading, Unavailable):
            return await self.second.read(now, ready_ips)
        return reading
