"""Against a real Prometheus: a group query's answer, split per target, is what each
target's own query answers at the same evaluation time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiohttp
import pytest

from scaler.config import TargetConfig, parse_config
from scaler.controller.reading.batch import PrometheusBatch
from scaler.sources.base import EmptyResult
from scaler.sources.prometheus import PrometheusSource
from tests.support.exporter import Exporter
from tests.support.prometheus_server import PrometheusServer

# The default config's two shapes, on the series the exporter has.
QUEUE = (
    'sum(last_over_time(ollama_proxy_queue_depth{namespace="NS"}[10s]))\n'
    '+ sum(last_over_time(ollama_proxy_requests_in_flight{namespace="NS"}[10s]))'
)
CPU = (
    'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="NS",\n'
    'container="ollama"}[30s]))'
)


@pytest.fixture
def namespaces(exporter: Exporter, exporter_namespace: str) -> Iterator[list[str]]:
    names = [f"{exporter_namespace[:60]}-{i}" for i in range(3)]
    try:
        yield names
    finally:
        for name in names:
            exporter.remove_namespace(name)


def _targets(url: str, namespaces: list[str]) -> list[TargetConfig]:
    metric = {"target": {"type": "AverageValue", "averageValue": 1}}
    cpu = {"type": "Resource", "target": {"type": "Utilization", "averageUtilization": 80}}
    targets = [
        {
            "namespace": ns,
            "deployment": "ollama",
            "maxReplicas": 10,
            "metrics": [
                {"name": "queue", "query": QUEUE.replace("NS", ns), **metric},
                {"name": "cpu", "query": CPU.replace("NS", ns), **cpu},
            ],
        }
        for ns in namespaces
    ]
    return list(parse_config({"prometheusUrl": url, "targets": targets}).targets)


async def test_the_split_group_answer_equals_each_targets_own_answer(
    scraped_prometheus: PrometheusServer,
    http_session: aiohttp.ClientSession,
    exporter: Exporter,
    namespaces: list[str],
) -> None:
    for i, ns in enumerate(namespaces):
        for pod in ("ollama-0", "ollama-1"):
            exporter.set_queue_depth(pod, i + 1, namespace=ns)
            exporter.set_in_flight(pod, 10 * (i + 1), namespace=ns)
            exporter.add_cpu_seconds(pod, i + 0.5, namespace=ns, container="ollama")
    source = PrometheusSource(http_session, scraped_prometheus.url, timeout=2.0, staleness=5.0)
    targets = _targets(scraped_prometheus.url, namespaces)
    batch = PrometheusBatch(source, targets)
    last = targets[-1].metrics

    async def scraped() -> bool:
        try:
            await source.per_pod(last[1].query, now=time.time())
            return (await source.value(last[0].query, now=time.time())).value == 66
        except EmptyResult:  # not scraped yet; rate needs two scrapes
            return False

    deadline = time.monotonic() + 15.0  # 1 s scrapes: ready after two or three
    while not await scraped():
        assert time.monotonic() < deadline, "the exporter's series did not show in 15 s"
        await asyncio.sleep(0.1)
    now = time.time()
    batch.begin(now, [t.key for t in targets])
    groups = {id(g): g for g in batch.groups.values()}
    assert len(groups) == 2  # one query per shape for the three targets
    assert all(g.query.count('=~"') == g.query.count("namespace=") for g in groups.values())
    values = await asyncio.gather(*(batch.value(t.metrics[0].query, now=now) for t in targets))
    pods = await asyncio.gather(*(batch.per_pod(t.metrics[1].query, now=now) for t in targets))
    assert values == await asyncio.gather(
        *(source.value(t.metrics[0].query, now=now) for t in targets)
    )
    assert pods == await asyncio.gather(
        *(source.per_pod(t.metrics[1].query, now=now) for t in targets)
    )
    assert [s.value for s in values] == [22, 44, 66]
    assert [sorted(p.samples) for p in pods] == [["ollama-0", "ollama-1"]] * 3
