"""The read seam: each metric is one ``Reader``; "the exporters directly, else
Prometheus" is one ``Fallback`` of two counted paths. Fake paths, no network, except
the last test, which reads proxy stand-ins on loopback through the reconciler."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from scaler.config import load, parse_config
from scaler.controller.metrics import build_metrics
from scaler.controller.reading import Counted, Fallback, MetricLabels, readers_for
from scaler.kube.workload import Workload
from scaler.policy import PodSample, PodValues, TotalValue, Unavailable
from scaler.sources.base import ConnectionFailed, HttpStatus, ImplausibleValue, MetricUnavailable
from scaler.sources.proxies import ProxyScraper
from tests.support.fakes import FakeActuator, FakeSource
from tests.support.proxy_stand_ins import stand_ins
from tests.test_controller import KEY, Rig, _config, _cpu

LABELS = {"namespace": "chatbot", "deployment": "ollama", "metric": "queue"}


@dataclass
class FakePath:
    """Answers each fetch with a reading or raises a failure; records each call."""

    answer: TotalValue | PodValues | MetricUnavailable
    calls: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)

    async def fetch(self, now: float, ready_ips: Sequence[str]) -> TotalValue | PodValues:
        self.calls.append((now, tuple(ready_ips)))
        if isinstance(self.answer, MetricUnavailable):
            raise self.answer
        return self.answer


class Paths:
    """A direct path and a Prometheus path, each counted, composed as ``scaler run``
    composes them; the counts in their own registry."""

    def __init__(
        self,
        direct: TotalValue | MetricUnavailable,
        prometheus: TotalValue | MetricUnavailable,
    ) -> None:
        self.registry = CollectorRegistry()
        metrics = build_metrics(self.registry, _config())
        at = MetricLabels("chatbot/ollama", ("chatbot", "ollama"), "queue", metrics)
        self.direct = FakePath(direct)
        self.prometheus = FakePath(prometheus)
        self.reader = Fallback(
            Counted(self.direct, source="direct", at=at),
            Counted(self.prometheus, source="prometheus", at=at),
        )

    def reads(self, source: str) -> float:
        return (
            self.registry.get_sample_value("scaler_metric_reads_total", LABELS | {"source": source})
            or 0
        )

    def errors(self, kind: str) -> float:
        return (
            self.registry.get_sample_value("scaler_metric_errors_total", LABELS | {"kind": kind})
            or 0
        )


async def test_a_direct_reading_serves_and_prometheus_is_not_asked() -> None:
    paths = Paths(TotalValue(8.0), TotalValue(0.0))
    assert await paths.reader.read(5.0, ("10.0.0.1",)) == TotalValue(8.0)
    assert paths.direct.calls == [(5.0, ("10.0.0.1",))]
    assert paths.prometheus.calls == []
    assert (paths.reads("direct"), paths.reads("prometheus")) == (1, 0)


async def test_a_direct_failure_is_counted_and_prometheus_serves() -> None:
    paths = Paths(HttpStatus("http://10.0.0.1:8080/metrics answered 503"), TotalValue(3.0))
    assert await paths.reader.read(5.0, ()) == TotalValue(3.0)
    assert paths.prometheus.calls == [(5.0, ())]
    assert paths.errors("http_status") == 1
    assert (paths.reads("direct"), paths.reads("prometheus")) == (0, 1)


async def test_when_both_fail_both_kinds_are_counted_and_prometheus_says_why() -> None:
    paths = Paths(HttpStatus("a router answered 503"), ConnectionFailed("connection refused"))
    assert await paths.reader.read(5.0, ()) == Unavailable("connection: connection refused")
    assert (paths.errors("http_status"), paths.errors("connection")) == (1, 1)
    assert (paths.reads("direct"), paths.reads("prometheus")) == (0, 0)


async def test_an_implausible_value_is_logged_once_per_path_until_a_good_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = ImplausibleValue("the routers' queue sum to -5, which no queue can be")
    paths = Paths(bad, ImplausibleValue("Prometheus returned -5"))

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    for now in (0.0, 2.0, 4.0):
        assert isinstance(await paths.reader.read(now, ()), Unavailable)
    assert paths.errors("implausible") == 6
    assert len(warnings()) == 2  # once per path
    assert "(direct)" in warnings()[0] and "(prometheus)" in warnings()[1]
    # A good direct read: the next implausible direct value is news again; Prometheus,
    # not asked meanwhile, still has its last read implausible and stays quiet.
    paths.direct.answer = TotalValue(1.0)
    await paths.reader.read(6.0, ())
    paths.direct.answer = bad
    await paths.reader.read(8.0, ())
    assert len(warnings()) == 3 and "(direct)" in warnings()[2]


async def test_each_metric_reads_prometheus_without_a_scraper_and_keeps_its_rate_window() -> None:
    data = _config().model_dump(by_alias=True, exclude_none=True)
    cpu = "sum by (pod) (rate(cpu[30s]))"
    data["targets"][0]["metrics"][1]["query"] = cpu
    config = parse_config(data)
    target = config.targets[0]
    assert target.metrics[0].direct is not None  # the default reads the routers directly
    source = FakeSource({"queue": 4.0, cpu: {"ollama-0": 0.5}})
    metrics = build_metrics(CollectorRegistry(), config)
    readers = readers_for(target, source=source, metrics=metrics)
    assert list(readers) == ["queue", "cpu"]
    assert await readers["queue"].read(7.0, ("10.0.0.1",)) == TotalValue(4.0)
    # Each CPU sample describes the rate's 30 s (the HPA's metric window).
    expected = PodValues({"ollama-0": PodSample(0.5, 7.0, 30.0)})
    assert await readers["cpu"].read(7.0, ()) == expected
    assert source.calls == [("queue", 7.0), (cpu, 7.0)]


class _ActuatorWithIPs(FakeActuator):
    """Pods with IPs: ``ollama-i`` at ``ips[i]``."""

    def __init__(self, ips: list[str]) -> None:
        super().__init__()
        self.ips = ips

    async def observe(self, namespace: str, deployment: str) -> Workload:
        workload = await super().observe(namespace, deployment)
        return Workload(
            workload.spec_replicas,
            workload.status_replicas,
            workload.pods,
            workload.annotations,
            workload.conflicting_hpa,
            pod_ips={pod.name: ip for pod, ip in zip(workload.pods, self.ips, strict=False)},
        )


async def test_the_pods_proxies_are_read_at_the_ips_of_the_last_observe() -> None:
    data = load().model_dump(by_alias=True, exclude_none=True)
    queue = data["targets"][0]["metrics"][0]
    queue["query"], data["targets"][0]["metrics"][1]["query"] = "queue", "cpu"
    async with stand_ins(2) as (proxies, urls), aiohttp.ClientSession() as session:
        port = int(urls[0].rsplit(":", 1)[1].split("/", 1)[0])
        queue["direct"] = {"port": port, "series": ["ollama_proxy_queue_depth"]}
        rig = Rig(parse_config(copy.deepcopy(data)), direct=ProxyScraper(session, timeout=1))
        deployment = rig.actuator.deployments[KEY]
        rig.actuator = _ActuatorWithIPs(["127.0.0.20", "127.0.0.21"])
        rig.actuator.deployments[KEY] = deployment
        rig.reconciler.actuator = rig.actuator
        proxies[0].queue.set(3)
        proxies[1].queue.set(1)
        # t=0: no pod list yet, so no proxy to read: Prometheus serves.
        await rig.at(0, queue=0.0, cpu=_cpu(2, 0.1))
        assert rig.sample("scaler_metric_errors_total", **LABELS, kind="empty") == 1
        assert rig.sample("scaler_metric_reads_total", **LABELS, source="prometheus") == 1
        # t=2: both pods' proxies, at the IPs the t=0 observe gave: 4 on 2 pods.
        await rig.at(2)
        assert rig.sample("scaler_metric_reads_total", **LABELS, source="direct") == 1
        assert rig.sample("scaler_metric_value", **LABELS) == 4 / 2
        assert [q for q, _ in rig.source.calls if q == "queue"] == ["queue"]
