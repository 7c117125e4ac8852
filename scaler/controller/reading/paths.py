"""Where a metric is read: Prometheus (one number, or one per pod), each serving
pod's proxy, or every router behind a name. Each raises ``MetricUnavailable``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scaler.policy import PodSample, PodValues, TotalValue
from scaler.sources.base import MetricSource
from scaler.sources.proxies import ProxyScraper, endpoint_urls


@dataclass(frozen=True, slots=True)
class PrometheusTotal:
    """An External metric: the query's one series."""

    source: MetricSource
    query: str

    async def fetch(self, now: float, ready_ips: Sequence[str]) -> TotalValue:
        sample = await self.source.value(self.query, now=now)
        return TotalValue(sample.value)


@dataclass(frozen=True, slots=True)
class PrometheusPerPod:
    """A Pods or Resource metric: one series per pod. ``window``: the seconds each
    sample describes (a rate's window; 0 for a gauge)."""

    source: MetricSource
    query: str
    window: float

    async def fetch(self, now: float, ready_ips: Sequence[str]) -> PodValues:
        series = await self.source.per_pod(self.query, now=now)
        return PodValues(
            {pod: PodSample(s.value, s.timestamp, self.window) for pod, s in series.samples.items()}
        )


@dataclass(frozen=True, slots=True)
class PodProxies:
    """The sum of ``series`` over each serving pod's proxy (``http://POD_IP:port``)."""

    scraper: ProxyScraper
    port: int
    path: str
    series: tuple[str, ...]

    async def fetch(self, now: float, ready_ips: Sequence[str]) -> TotalValue:
        urls = endpoint_urls(ready_ips, self.port, self.path)
        sample = await self.scraper.total(urls, self.series, now=now)
        return TotalValue(sample.value)


@dataclass(frozen=True, slots=True)
class Routers:
    """The sum of ``series`` over every address ``host`` resolves to (the routers
    behind a headless Service), looked up at each read."""

    scraper: ProxyScraper
    host: str
    port: int
    path: str
    series: tuple[str, ...]

    async def fetch(self, now: float, ready_ips: Sequence[str]) -> TotalValue:
        sample = await self.scraper.total_behind(
            self.host, port=self.port, path=self.path, series=self.series, now=now
        )
        return TotalValue(sample.value)
