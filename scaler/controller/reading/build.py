"""Each metric's reader, built once per target from the configuration."""

from __future__ import annotations

from collections.abc import Mapping

from scaler.config import MetricConfig, TargetConfig
from scaler.config.direct import DirectConfig
from scaler.controller.metrics import ControllerMetrics
from scaler.controller.push import Pushed, PushFeed
from scaler.controller.reading.paths import PodProxies, PrometheusPerPod, PrometheusTotal, Routers
from scaler.controller.reading.seam import Counted, Fallback, MetricLabels, Reader, ReadPath
from scaler.policy import SourceType
from scaler.sources.base import MetricSource
from scaler.sources.proxies import ProxyScraper


def readers_for(
    target: TargetConfig,
    *,
    source: MetricSource,
    metrics: ControllerMetrics,
    scraper: ProxyScraper | None = None,
    feeds: Mapping[str, PushFeed] | None = None,
) -> dict[str, Reader]:
    """Each metric's reader, by name, in the target's order: Prometheus; or, for a
    metric with ``direct`` when a ``scraper`` is given, its exporters read directly
    with Prometheus as the fallback; and before both, for a metric with a feed in
    ``feeds`` (by name), the latest values its routers pushed."""
    readers: dict[str, Reader] = {}
    for metric in target.metrics:
        at = MetricLabels(target.key, (target.namespace, target.deployment), metric.name, metrics)
        reader: Reader = Counted(_prometheus(metric, source), source="prometheus", at=at)
        if metric.direct is not None and scraper is not None:
            direct = Counted(_direct(metric.direct, scraper), source="direct", at=at)
            reader = Fallback(direct, reader)
        if feeds is not None and metric.name in feeds:
            pushed = Counted(Pushed(feeds[metric.name]), source="push", at=at)
            reader = Fallback(pushed, reader)
        readers[metric.name] = reader
    return readers


def _prometheus(metric: MetricConfig, source: MetricSource) -> ReadPath:
    if metric.type is SourceType.EXTERNAL:
        return PrometheusTotal(source, metric.query)
    return PrometheusPerPod(source, metric.query, metric.rate_window or 0.0)


def _direct(direct: DirectConfig, scraper: ProxyScraper) -> ReadPath:
    series = tuple(direct.series)
    if direct.host is None:
        return PodProxies(scraper, direct.port, direct.path, series)
    return Routers(scraper, direct.host, direct.port, direct.path, series)
