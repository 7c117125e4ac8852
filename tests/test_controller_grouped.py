"""The controller reads grouped: 10 targets in 10 namespaces, one query per metric shape
per tick, counted at a fake Prometheus that evaluates the namespace matchers it gets."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from scaler.config import ScalerConfig, load, parse_config
from scaler.controller.loop import Controller
from scaler.controller.metrics import build_metrics
from scaler.controller.reading import readers_for
from scaler.controller.reading.batch import PrometheusBatch
from scaler.controller.target import TargetReconciler
from scaler.kube.errors import KubeError
from scaler.kube.workload import Workload
from scaler.sources.prometheus import PrometheusSource
from tests.support.fakes import FakeActuator, FakeClock, FakeDeployment

NAMESPACES = [f"team-{i}" for i in range(10)]


@dataclass
class FakePrometheus:
    """Answers each query with a series per namespace its matchers name (the value is
    the namespace's number), per pod ``ollama-0/1`` for a ``by (pod`` query."""

    queries: list[str] = field(default_factory=list)
    status: int = 200

    async def handle(self, request: web.Request) -> web.Response:
        query = request.query["query"]
        self.queries.append(query)
        if self.status != 200:
            return web.Response(status=self.status, text='{"status":"error"}')
        found = re.search(r'namespace=~?"([^"]*)"', query)
        names = found.group(1).replace("\\\\", "\\").split("|") if found else []
        pods = ["ollama-0", "ollama-1"] if "by (pod" in query else [None]
        now = float(request.query["time"])
        result = [
            {
                "metric": {"namespace": ns.replace("\\", ""), **({"pod": pod} if pod else {})},
                "value": [now, str(int(ns.rsplit("-", 1)[1]))],
            }
            for ns in names
            for pod in pods
        ]
        body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return web.Response(text=json.dumps(body), content_type="application/json")


@pytest.fixture
async def prometheus() -> AsyncIterator[tuple[FakePrometheus, str]]:
    fake = FakePrometheus()
    app = web.Application()
    app.router.add_get("/api/v1/query", fake.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield fake, str(server.make_url("/"))


def _config(url: str) -> ScalerConfig:
    data = load(environ={}).model_dump(by_alias=True, exclude_none=True)
    one = data["targets"][0]
    del one["metrics"][0]["direct"]  # read from Prometheus only
    targets = []
    for ns in NAMESPACES:
        target = copy.deepcopy(one)
        target["namespace"] = ns
        for metric in target["metrics"]:
            metric["query"] = metric["query"].replace('namespace="chatbot"', f'namespace="{ns}"')
        targets.append(target)
    data.update(prometheusUrl=url, targets=targets)
    return parse_config(data)


@dataclass
class Rig:
    controller: Controller
    registry: CollectorRegistry

    def value(self, ns: str, metric: str) -> float | None:
        labels = {"namespace": ns, "deployment": "ollama", "metric": metric}
        return self.registry.get_sample_value("scaler_metric_value", labels)

    def errors(self, ns: str, metric: str, kind: str) -> float | None:
        labels = {"namespace": ns, "deployment": "ollama", "metric": metric, "kind": kind}
        return self.registry.get_sample_value("scaler_metric_errors_total", labels)


def _rig(config: ScalerConfig, session: aiohttp.ClientSession) -> Rig:
    registry = CollectorRegistry()
    metrics = build_metrics(registry, config)
    source = PrometheusSource(session, config.prometheus_url, timeout=1.0, staleness=5.0)
    batch = PrometheusBatch(source, config.targets)
    actuator = FakeActuator({(ns, "ollama"): FakeDeployment(2) for ns in NAMESPACES})
    reconcilers = [
        TargetReconciler(
            target,
            config=config,
            readers=readers_for(target, source=batch, metrics=metrics),
            actuator=actuator,
            metrics=metrics,
            is_leader=lambda: True,
        )
        for target in config.targets
    ]
    clock = FakeClock(1_000_000.0)
    controller = Controller(reconcilers, metrics=metrics, clock=clock, batch=batch)
    return Rig(controller, registry)


async def test_ten_targets_in_ten_namespaces_cost_one_query_per_shape_per_tick(
    prometheus: tuple[FakePrometheus, str], http_session: aiohttp.ClientSession
) -> None:
    fake, url = prometheus
    rig = _rig(_config(url), http_session)
    await rig.controller.tick()
    assert len(fake.queries) == 2  # the queue shape and the CPU shape
    for query in fake.queries:
        assert 'namespace=~"' + "|".join(NAMESPACES) + '"' in query
    # Each target took its own namespace's series: team-7's queue is 7 (the fake
    # evaluates no sum), 3.5 per replica of its two.
    assert [rig.value(ns, "queue") for ns in NAMESPACES] == [i / 2 for i in range(10)]
    # And each pod of team-7 uses 7 cores of its 2 requested: 350 %.
    assert [rig.value(ns, "cpu") for ns in NAMESPACES] == [50.0 * i for i in range(10)]
    rig.controller.clock.now += 60  # type: ignore[attr-defined]
    await rig.controller.tick()
    assert len(fake.queries) == 4


async def test_a_failing_group_query_makes_the_metric_unavailable_for_each_target(
    prometheus: tuple[FakePrometheus, str], http_session: aiohttp.ClientSession
) -> None:
    fake, url = prometheus
    fake.status = 503
    rig = _rig(_config(url), http_session)
    await rig.controller.tick()
    assert len(fake.queries) == 2
    for ns in NAMESPACES:
        assert rig.errors(ns, "queue", "http_status") == 1
        assert rig.errors(ns, "cpu", "http_status") == 1


async def test_an_ungroupable_query_is_logged_once_at_start_and_asked_per_target(
    prometheus: tuple[FakePrometheus, str],
    http_session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, url = prometheus
    config = _config(url)
    data = config.model_dump(by_alias=True, exclude_none=True)
    for target in data["targets"]:
        target["metrics"][1]["query"] = target["metrics"][1]["query"].replace("sum by", "max by")
    caplog.set_level(logging.INFO, logger="scaler.controller")
    rig = _rig(parse_config(data), http_session)
    fallbacks = [r for r in caplog.records if "never grouped" in r.getMessage()]
    assert len(fallbacks) == 10 and "aggregation 'max'" in fallbacks[0].getMessage()
    caplog.clear()
    await rig.controller.tick()
    rig.controller.clock.now += 60  # type: ignore[attr-defined]
    await rig.controller.tick()
    assert len(fake.queries) == 2 * (1 + 10)  # the queue grouped, the CPU per target
    assert not [r for r in caplog.records if "never grouped" in r.getMessage()]


async def test_a_target_decided_alone_asks_its_own_query(
    prometheus: tuple[FakePrometheus, str], http_session: aiohttp.ClientSession
) -> None:
    fake, url = prometheus
    rig = _rig(_config(url), http_session)
    await rig.controller.tick()
    rig.controller.wake("team-4/ollama")  # a push: only team-4 is due
    fake.queries.clear()
    await rig.controller.tick()
    assert len(fake.queries) == 2
    assert all('namespace="team-4"' in q and "=~" not in q for q in fake.queries)


class _UnreadableTeam0(FakeActuator):
    """team-0's Deployment cannot be read, after its reads have started."""

    async def observe(self, namespace: str, deployment: str) -> Workload:
        if namespace != "team-0":
            return await super().observe(namespace, deployment)
        for _ in range(3):
            await asyncio.sleep(0)  # let its reads ask first: they start the groups
        raise KubeError("the Deployment cannot be read")


async def test_a_member_whose_reads_are_cancelled_does_not_cancel_the_group(
    prometheus: tuple[FakePrometheus, str], http_session: aiohttp.ClientSession
) -> None:
    fake, url = prometheus
    rig = _rig(_config(url), http_session)
    unreadable = _UnreadableTeam0({(ns, "ollama"): FakeDeployment(2) for ns in NAMESPACES})
    for reconciler in rig.controller.targets:
        reconciler.actuator = unreadable
    await rig.controller.tick()
    assert len(fake.queries) == 2
    assert rig.controller.raised == dict.fromkeys(range(10), 0)  # no reconcile raised
    assert [rig.value(ns, "queue") for ns in NAMESPACES[1:]] == [i / 2 for i in range(1, 10)]
