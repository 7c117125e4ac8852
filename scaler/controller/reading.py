"""One target's metric reads: the direct path first where configured, else (or on
its failure) Prometheus. Each failure is counted and becomes an ``Unavailable``
reading the engine holds on; a value that cannot be real is also logged, once."""

from __future__ import annotations

import logging

from scaler.config import MetricConfig
from scaler.controller.metrics import ControllerMetrics
from scaler.logs import FIELDS
from scaler.policy import MetricReading, PodSample, PodValues, SourceType, TotalValue, Unavailable
from scaler.sources.base import ImplausibleValue, MetricSource, MetricUnavailable
from scaler.sources.proxies import ProxyScraper, endpoint_urls

log = logging.getLogger("scaler.controller")


class MetricReader:
    """Reads a target's metrics. ``ready_ips``: the ready pods' IPs at the last
    observe, for reading their proxies directly."""

    def __init__(
        self,
        *,
        key: str,
        labels: tuple[str, str],
        source: MetricSource,
        direct: ProxyScraper | None,
        metrics: ControllerMetrics,
    ) -> None:
        self.key = key
        self.labels = labels
        self.source = source
        self.direct = direct
        self.metrics = metrics
        self.ready_ips: tuple[str, ...] = ()
        # (metric, path) whose last read was implausible: logged once, again after
        # a good read of that metric on that path.
        self.implausible: set[tuple[str, str]] = set()

    async def read(self, metric: MetricConfig, now: float) -> MetricReading:
        if metric.direct is not None and self.direct is not None:
            reading = await self._read_direct(metric, now)
            if reading is not None:
                return reading
        try:
            if metric.type is SourceType.EXTERNAL:
                sample = await self.source.value(metric.query, now=now)
                self._ok(metric.name, "prometheus")
                return TotalValue(sample.value)
            series = await self.source.per_pod(metric.query, now=now)
        except MetricUnavailable as error:
            self._failed(metric.name, "prometheus", error)
            return Unavailable(f"{error.kind}: {error}")
        self._ok(metric.name, "prometheus")
        window = metric.rate_window or 0.0
        return PodValues(
            {pod: PodSample(s.value, s.timestamp, window) for pod, s in series.samples.items()}
        )

    async def _read_direct(self, metric: MetricConfig, now: float) -> MetricReading | None:
        """The pods' proxies, or the routers behind ``host``, read directly; or None to
        fall back to Prometheus."""
        direct = metric.direct
        assert direct is not None and self.direct is not None
        try:
            if direct.host is None:
                urls = endpoint_urls(self.ready_ips, direct.port, direct.path)
                sample = await self.direct.total(urls, direct.series, now=now)
            else:
                sample = await self.direct.total_behind(
                    direct.host, port=direct.port, path=direct.path, series=direct.series, now=now
                )
        except MetricUnavailable as error:
            self._failed(metric.name, "direct", error)
            log.debug(
                "direct read failed, using Prometheus: %s",
                error,
                extra={FIELDS: {"target": self.key, "metric": metric.name}},
            )
            return None
        self._ok(metric.name, "direct")
        return TotalValue(sample.value)

    def _ok(self, metric: str, path: str) -> None:
        self.metrics.metric_reads.labels(*self.labels, metric, path).inc()
        self.implausible.discard((metric, path))

    def _failed(self, metric: str, path: str, error: MetricUnavailable) -> None:
        """Count the failure; a value that cannot be real is also logged, once, with
        the value, until a good read of that metric on that path."""
        self.metrics.metric_errors.labels(*self.labels, metric, error.kind).inc()
        if isinstance(error, ImplausibleValue) and (metric, path) not in self.implausible:
            self.implausible.add((metric, path))
            log.warning(
                "a reading that cannot be real counts as missing (%s): %s",
                path,
                error,
                extra={FIELDS: {"target": self.key, "metric": metric}},
            )
