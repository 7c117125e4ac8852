"""Readings that cannot be real hold the Deployment (issue 13, point 4).

The controller reads a real ``PrometheusSource`` against a fake Prometheus on
127.0.0.1 and, for the queue, the routers' stand-ins: a negative queue from either
used to scale down (3 -> 2 from Prometheus, 6 -> 2 from the routers).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from scaler.config import parse_config
from scaler.policy import Reason
from scaler.sources.prometheus import PrometheusSource
from scaler.sources.proxies import ProxyScraper
from tests.support.router_stand_ins import FakeResolver, router_stand_ins
from tests.test_controller import Rig, _config, _cpu

LABELS = {"namespace": "chatbot", "deployment": "ollama"}


class FakePrometheus:
    """Answers each query with one series, or one per pod, stamped with ``time``."""

    def __init__(self) -> None:
        self.answers: dict[str, float | Mapping[str, float]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        answer = self.answers[request.query["query"]]
        stamp = float(request.query["time"])
        if isinstance(answer, Mapping):
            result = [{"metric": {"pod": p}, "value": [stamp, repr(v)]} for p, v in answer.items()]
        else:
            result = [{"metric": {}, "value": [stamp, repr(float(answer))]}]
        data = {"resultType": "vector", "result": result}
        return web.json_response({"status": "success", "data": data})


@asynccontextmanager
async def _prometheus() -> AsyncIterator[tuple[FakePrometheus, str]]:
    fake = FakePrometheus()
    app = web.Application()
    app.router.add_get("/api/v1/query", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield fake, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _prometheus_source(session: aiohttp.ClientSession, url: str) -> PrometheusSource:
    return PrometheusSource(session, url, timeout=2, staleness=5)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_a_negative_queue_from_prometheus_holds_instead_of_scaling_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _prometheus() as (prom, url), aiohttp.ClientSession() as session:
        rig = Rig(replicas=3, prometheus=_prometheus_source(session, url))
        prom.answers.update(queue=3.0, cpu=_cpu(3, 1.6))
        assert await rig.at(0) is Reason.WITHIN_TOLERANCE
        # t=2..130: the queue reads -5 and the CPU is quiet. Before: 3 -> 2 once the
        # 60 s window passed. Now the queue is missing, and the CPU alone may not
        # scale down (computeReplicasForMetrics' rule).
        prom.answers.update(queue=-5.0, cpu=_cpu(3, 0.1))
        for t in range(2, 132, 2):
            assert await rig.at(t) is Reason.METRICS_INCOMPLETE
        assert rig.actuator.scaled == []
        errors = rig.sample(
            "scaler_metric_errors_total", **LABELS, metric="queue", kind="implausible"
        )
        assert errors == 65
        # Logged once, with the value, however many polls it lasts.
        (warning,) = [w for w in _warnings(caplog) if "cannot be real" in w]
        assert "returned -5, " in warning
        # A sane queue comes back: the rules take over again.
        prom.answers.update(queue=0.0)
        await rig.at(132)
        assert rig.replicas == 2


async def test_a_negative_queue_from_the_routers_falls_back_then_holds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = _config().model_dump(by_alias=True, exclude_none=True)
    direct = data["targets"][0]["metrics"][0]["direct"]
    host = direct["host"]
    async with (
        _prometheus() as (prom, url),
        aiohttp.ClientSession() as session,
        router_stand_ins(2) as (routers, addresses, port),
    ):
        direct["port"] = port
        resolver = FakeResolver({host: addresses})
        scraper = ProxyScraper(session, timeout=1, resolver=resolver)
        prometheus = _prometheus_source(session, url)
        rig = Rig(parse_config(data), replicas=6, direct=scraper, prometheus=prometheus)
        routers[0].queue.set(3)
        routers[1].in_flight.set(3)
        prom.answers.update(queue=6.0, cpu=_cpu(6, 1.6))
        assert await rig.at(0) is Reason.WITHIN_TOLERANCE
        # t=2..130: one router reports -5 (and Prometheus, scraping it, too).
        routers[0].queue.set(-5)
        prom.answers.update(queue=-5.0, cpu=_cpu(6, 0.1))
        for t in range(2, 132, 2):
            assert await rig.at(t) is Reason.METRICS_INCOMPLETE
        assert rig.actuator.scaled == []
        warnings = [w for w in _warnings(caplog) if "cannot be real" in w]
        assert len(warnings) == 2  # once per path: the routers, then Prometheus
        assert "scaler_router_queue_depth = -5, " in warnings[0]
        # The routers answer sanely again; a reading of both series is used at once.
        routers[0].queue.set(0)
        routers[1].in_flight.set(0)
        await rig.at(132)
        reads = rig.sample("scaler_metric_reads_total", **LABELS, metric="queue", source="direct")
        assert reads == 2 and rig.replicas == 3
