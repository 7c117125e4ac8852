"""Idle victims: before a scale-down the controller writes each pod's load as its
``controller.kubernetes.io/pod-deletion-cost``, with the real kubernetes-asyncio client
against the fake API server and each pod's load read from a real ``/metrics`` on its
own loopback address."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from scaler.config import ScalerConfig, load, parse_config
from scaler.controller.metrics import build_metrics
from scaler.controller.reading import readers_for
from scaler.controller.target import TargetReconciler
from scaler.controller.victims import VictimMarker, costs_to_write
from scaler.kube.actuator import KubeActuator
from scaler.kube.errors import Forbidden, KubeError
from scaler.kube.workload import DELETION_COST_ANNOTATION
from scaler.policy import Reason
from scaler.sources.proxies import ProxyScraper
from tests.support.drain_rig import port_free_on
from tests.support.fake_kube import Cluster, running_cluster
from tests.support.fakes import FakeSource

PODS = 6
NS = "chatbot"


def pod_ip(i: int) -> str:
    return f"127.0.0.{40 + i}"


class Pods:
    """Each pod's proxy as far as the controller sees it: ``/metrics`` with its load."""

    def __init__(self) -> None:
        self.held = [0] * PODS
        self.port = port_free_on([pod_ip(i) for i in range(PODS)])
        self.runners: list[web.AppRunner] = []

    async def start(self) -> None:
        for i in range(PODS):

            async def metrics(request: web.Request, i: int = i) -> web.Response:
                text = (
                    f"ollama_proxy_requests_in_flight {self.held[i]}\nollama_proxy_queue_depth 0\n"
                )
                return web.Response(text=text)

            app = web.Application()
            app.router.add_get("/metrics", metrics)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, pod_ip(i), self.port).start()
            self.runners.append(runner)

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        cluster.fake.add_deployment(NS, "ollama", replicas=PODS)
        for i in range(PODS):
            cluster.fake.add_pod(NS, f"ollama-{i}", labels={"app": "ollama"}, ip=pod_ip(i))
        yield cluster


@pytest.fixture
async def pods() -> AsyncIterator[Pods]:
    running = Pods()
    await running.start()
    yield running
    await running.stop()


def _cost(kube: Cluster, i: int) -> str | None:
    annotations = kube.fake.get("pods", NS, f"ollama-{i}")["metadata"].get("annotations") or {}
    value = annotations.get(DELETION_COST_ANNOTATION)
    return value if isinstance(value, str) else None


def _config() -> ScalerConfig:
    data = load().model_dump(by_alias=True, exclude_none=True)
    target = data["targets"][0]
    target["metrics"][0]["query"] = "queue"
    target["metrics"][0].pop("direct", None)
    del target["metrics"][1]  # the queue alone decides here
    return parse_config(copy.deepcopy(data))


async def test_annotate_pod_writes_the_cost_and_observe_reads_it_back(kube: Cluster) -> None:
    actuator = KubeActuator(kube.api, request_timeout=2.0)
    await actuator.annotate_pod(NS, "ollama-2", {DELETION_COST_ANNOTATION: "3"})
    assert _cost(kube, 2) == "3"
    (patch,) = kube.fake.calls("PATCH", "/pods/ollama-2$")
    assert patch.body == {"metadata": {"annotations": {DELETION_COST_ANNOTATION: "3"}}}
    workload = await actuator.observe(NS, "ollama")
    assert workload.deletion_costs == {"ollama-2": "3"}
    with pytest.raises(KubeError, match="must be a 32bit integer") as invalid:
        await actuator.annotate_pod(NS, "ollama-2", {DELETION_COST_ANNOTATION: "+1"})
    assert invalid.value.status == 422
    kube.fake.fail("PATCH", "/pods/", status=403, times=1)
    with pytest.raises(Forbidden, match="annotate pod chatbot/ollama-1"):
        await actuator.annotate_pod(NS, "ollama-1", {DELETION_COST_ANNOTATION: "0"})


def test_only_known_loads_that_change_a_cost_are_written() -> None:
    loads = {"a": 0, "b": 2, "c": None, "d": 1}
    assert costs_to_write(loads, {"a": "0", "b": "1", "c": "5"}) == {"b": "2", "d": "1"}


async def test_marking_reads_each_pods_load_and_patches_only_changes(
    kube: Cluster, pods: Pods
) -> None:
    actuator = KubeActuator(kube.api, request_timeout=2.0)
    kube.fake.update(
        "pods", NS, "ollama-0", {"metadata": {"annotations": {DELETION_COST_ANNOTATION: "2"}}}
    )
    pods.held = [2, 0, 1, 0, 1, 0]
    async with aiohttp.ClientSession() as session:
        marker = VictimMarker(ProxyScraper(session, timeout=2.0), actuator, port=pods.port)
        marked = await marker.mark(NS, await actuator.observe(NS, "ollama"), now=0.0)
    assert (marked.patched, marked.unread, marked.error) == (5, 0, None)  # ollama-0 had 2
    assert [_cost(kube, i) for i in range(PODS)] == ["2", "0", "1", "0", "1", "0"]
    assert not kube.fake.calls("PATCH", "/pods/ollama-0$")


async def test_a_pod_whose_proxy_cannot_be_read_keeps_its_cost(kube: Cluster, pods: Pods) -> None:
    actuator = KubeActuator(kube.api, request_timeout=2.0)
    kube.fake.update("pods", NS, "ollama-5", {"status": {"podIP": "127.0.0.39"}})  # no proxy
    async with aiohttp.ClientSession() as session:
        marker = VictimMarker(ProxyScraper(session, timeout=1.0), actuator, port=pods.port)
        marked = await marker.mark(NS, await actuator.observe(NS, "ollama"), now=0.0)
    assert (marked.patched, marked.unread) == (5, 1)
    assert _cost(kube, 5) is None


class Controller:
    """One target's reconcile over the fake API server and the pods' ``/metrics``."""

    def __init__(self, kube: Cluster, session: aiohttp.ClientSession, port: int) -> None:
        config = _config()
        self.registry = CollectorRegistry()
        self.actuator = KubeActuator(kube.api, request_timeout=2.0)
        self.source = FakeSource({"queue": 0.0})
        scraper = ProxyScraper(session, timeout=1.0)
        metrics = build_metrics(self.registry, config)
        self.reconciler = TargetReconciler(
            config.targets[0],
            config=config,
            readers=readers_for(config.targets[0], source=self.source, metrics=metrics),
            actuator=self.actuator,
            metrics=metrics,
            is_leader=lambda: True,
            victims=VictimMarker(scraper, self.actuator, port=port),
        )

    async def at(self, t: float) -> Reason:
        decision = await self.reconciler.reconcile(1_000_000.0 + t)
        assert decision is not None
        return decision.reason


async def test_a_scale_down_marks_the_pods_first_and_a_scale_up_does_not(
    kube: Cluster, pods: Pods
) -> None:
    pods.held = [0, 1, 0, 2, 0, 1]
    async with aiohttp.ClientSession() as session:
        controller = Controller(kube, session, pods.port)
        await controller.at(0)  # nothing written inside the scale-down window
        assert not kube.fake.calls("PATCH")
        await controller.at(61)  # idle for 60 s: -50 %
    assert kube.fake.get("deployments", NS, "ollama")["spec"]["replicas"] == 3
    patches = [r.path for r in kube.fake.calls("PATCH")]
    assert patches[-1].endswith("/deployments/ollama/scale")  # the scale comes last
    assert sorted(patches[:-1]) == [f"/api/v1/namespaces/{NS}/pods/ollama-{i}" for i in range(PODS)]
    assert [_cost(kube, i) for i in range(PODS)] == ["0", "1", "0", "2", "0", "1"]


async def test_a_failed_marking_logs_once_and_the_scale_down_still_happens(
    kube: Cluster, pods: Pods, caplog: pytest.LogCaptureFixture
) -> None:
    kube.fake.fail("PATCH", "/pods/", status=403, times=None)
    async with aiohttp.ClientSession() as session:
        controller = Controller(kube, session, pods.port)
        await controller.at(0)
        with caplog.at_level(logging.WARNING, logger="scaler.controller"):
            await controller.at(61)
            assert kube.fake.get("deployments", NS, "ollama")["spec"]["replicas"] == 3
            await controller.at(122)  # 3 -> 2 (minReplicas): fails again, not logged again
    assert kube.fake.get("deployments", NS, "ollama")["spec"]["replicas"] == 2
    warned = [r for r in caplog.records if "cannot mark idle pods" in r.getMessage()]
    assert len(warned) == 1
    errors = controller.registry.get_sample_value(
        "scaler_kubernetes_errors_total", {"operation": "annotate"}
    )
    assert errors == 2
