"""Scale down without losing an answer (issue 12's Done means): real servers on
loopback, the fake API server over HTTP, the controller's real reconcile; the
ReplicaSet and the kubelet emulated as ``tests/support/drain_rig.py`` describes."""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import httpx
import pytest
from prometheus_client import CollectorRegistry

from scaler.config import ScalerConfig, load, parse_config
from scaler.controller.metrics import build_metrics
from scaler.controller.reading import readers_for
from scaler.controller.target import TargetReconciler
from scaler.controller.victims import VictimMarker
from scaler.kube.actuator import KubeActuator
from scaler.kube.workload import DELETION_COST_ANNOTATION
from scaler.policy import PIN_ANNOTATION, Decision
from scaler.router.endpoints import EndpointState
from scaler.sources.proxies import ProxyScraper
from tests.support.drain_rig import NS, Stack, replicaset_victims, running_stack
from tests.support.fake_kube import Cluster, running_cluster
from tests.support.fakes import FakeSource
from tests.support.waits import until

PARALLEL = 4
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        yield cluster


def _config() -> ScalerConfig:
    """The default target, on the queue alone (the source is the test), at PARALLEL
    requests per pod."""
    data = load().model_dump(by_alias=True, exclude_none=True)
    target = data["targets"][0]
    queue = target["metrics"][0]
    queue.pop("direct", None)
    queue["query"] = "queue"
    queue["target"] = {"type": "AverageValue", "averageValue": PARALLEL}
    del target["metrics"][1]
    return parse_config(copy.deepcopy(data))


class Controller:
    """``scaler run``'s reconcile for the Ollama target; the queue it reads is the
    router's (queued + in flight), given by the test."""

    def __init__(self, stack: Stack, session: aiohttp.ClientSession) -> None:
        config = _config()
        self.source = FakeSource({"queue": 0.0})
        actuator = KubeActuator(stack.kube.api, request_timeout=5.0)
        port = stack.pods[0].server.port
        metrics = build_metrics(CollectorRegistry(), config)
        self.reconciler = TargetReconciler(
            config.targets[0],
            config=config,
            readers=readers_for(config.targets[0], source=self.source, metrics=metrics),
            actuator=actuator,
            metrics=metrics,
            is_leader=lambda: True,
            victims=VictimMarker(ProxyScraper(session, timeout=5.0), actuator, port=port),
        )
        self.now = 1_000_000.0

    async def poll(self, *, after: float, queue: float) -> Decision:
        self.now += after
        self.source.values["queue"] = queue
        decision = await self.reconciler.reconcile(self.now)
        assert decision is not None
        return decision


async def _chat(http: httpx.AsyncClient, url: str) -> list[dict[str, object]]:
    """One streamed answer's lines; a cut-off answer ends with an ``error`` line."""
    try:
        async with http.stream("POST", f"{url}/api/chat", json=CHAT) as response:
            if response.status_code != 200:
                return [{"error": f"status {response.status_code}"}]
            return [json.loads(line) async for line in response.aiter_lines() if line]
    except httpx.HTTPError as error:
        return [{"error": f"{type(error).__name__}: {error}"}]


def _complete(lines: list[dict[str, object]], tokens: int) -> bool:
    return (
        len(lines) == tokens + 1
        and lines[-1].get("done") is True
        and lines[-1].get("eval_count") == tokens
        and not any("error" in line for line in lines)
    )


def _replicas(kube: Cluster) -> int:
    replicas: int = kube.fake.get("deployments", NS, "ollama")["spec"]["replicas"]
    return replicas


def _costs(kube: Cluster) -> dict[str, str]:
    return {
        name: obj["metadata"].get("annotations", {}).get(DELETION_COST_ANNOTATION, "-")
        for (resource, _, name), obj in sorted(kube.fake.objects.items())
        if resource == "pods"
    }


def _assert_everything_idle(stack: Stack) -> None:
    dispatcher = stack.router.dispatcher
    assert (dispatcher.queued, dispatcher.in_flight) == (0, 0)
    for name in ("scaler_router_queue_depth", "scaler_router_requests_in_flight"):
        assert stack.registry.get_sample_value(name) in (0.0, None), name
    for i in stack.live:
        pod = stack.pods[i]
        assert (pod.proxy.admission.active, pod.proxy.admission.queued) == (0, 0), pod.name
        stats = pod.fake.stats()
        assert (stats.active, stats.waiting) == (0, 0), pod.name


async def test_ten_answers_on_six_pods_a_scale_down_to_three_removes_the_idle_pods(
    kube: Cluster,
) -> None:
    fake = {"tokens": 40, "tokens_per_second": 20.0}  # 2 s answers
    async with (
        running_stack(kube, pods=6, parallel=PARALLEL, fake=fake) as stack,
        aiohttp.ClientSession() as session,
        httpx.AsyncClient(timeout=60, trust_env=False) as http,
    ):
        for i in range(6):
            stack.create(i)  # ollama-5 the youngest
        kube.fake.update("deployments", NS, "ollama", {"spec": {"replicas": 6}})
        # The answers go to the three youngest pods, which the ReplicaSet would delete
        # first if nothing told it otherwise.
        stack.show(dict.fromkeys([3, 4, 5], EndpointState.READY))
        answers = [asyncio.create_task(_chat(http, stack.url)) for _ in range(10)]
        await until(lambda: stack.router.dispatcher.in_flight == 10)
        stack.show(stack.ready_states())
        controller = Controller(stack, session)
        assert (await controller.poll(after=0, queue=10)).replicas == 6  # stabilizing
        decision = await controller.poll(after=61, queue=10)
        assert (decision.current, decision.replicas, _replicas(kube)) == (6, 3, 3)
        costs = _costs(kube)  # what each pod's proxy held: the 10 answers on the young three
        assert [costs[f"ollama-{i}"] for i in range(3)] == ["0", "0", "0"]
        assert sum(int(costs[f"ollama-{i}"]) for i in range(3, 6)) == 10
        victims = replicaset_victims(kube, 3)
        assert victims == ["ollama-2", "ollama-1", "ollama-0"]  # the idle ones
        await stack.delete([int(name.rsplit("-", 1)[1]) for name in victims])
        results = await asyncio.gather(*answers)
        assert [_complete(lines, 40) for lines in results] == [True] * 10
        assert sorted(stack.live) == [3, 4, 5]
        assert stack.held_at_sigterm == [0, 0, 0]
        _assert_everything_idle(stack)


async def test_soak_2000_streams_across_scale_ups_and_downs_lose_no_answer(
    kube: Cluster,
) -> None:
    total, senders, tokens = 2000, 24, 6
    fake = {"tokens": tokens, "tokens_per_second": 50.0}  # 120 ms answers
    rng = random.Random(12)
    async with (
        running_stack(kube, pods=6, parallel=PARALLEL, fake=fake) as stack,
        aiohttp.ClientSession() as session,
        httpx.AsyncClient(timeout=60, trust_env=False) as http,
    ):
        for i in range(6):
            stack.create(i)
        kube.fake.update("deployments", NS, "ollama", {"spec": {"replicas": 6}})
        controller = Controller(stack, session)
        results: list[list[dict[str, object]]] = []
        remaining = iter(range(total))

        async def send() -> None:
            for _ in remaining:
                results.append(await _chat(http, stack.url))

        traffic = asyncio.gather(*(send() for _ in range(senders)))
        downs = ups = 0
        for _ in range(200):  # bounded: the traffic ends long before
            if traffic.done():
                break
            # Pacing, not ordering: the scale steps land at random points of the traffic.
            await asyncio.sleep(0.05)
            if len(stack.live) > 2:
                keep = rng.randint(2, len(stack.live) - 1)
                await _scale_down(stack, controller, keep)
                assert len(stack.live) == keep
                downs += 1
            else:
                await _pin(stack, controller, 6)
                for i in range(6):
                    if i not in stack.live:
                        stack.create(i)
                ups += 1
        await traffic
        assert len(results) == total
        cut = [lines for lines in results if not _complete(lines, tokens)]
        assert cut == []
        assert downs >= 3 and ups >= 3, (downs, ups)
        assert sum(stack.held_at_sigterm) > 0  # busy pods were drained too, not just idle
        await until(lambda: stack.router.dispatcher.in_flight == 0)
        _assert_everything_idle(stack)


async def _pin(stack: Stack, controller: Controller, replicas: int) -> Decision:
    """A person pins the Deployment; the controller acts on its next poll."""
    pin = {"metadata": {"annotations": {PIN_ANNOTATION: str(replicas)}}}
    stack.kube.fake.update("deployments", NS, "ollama", pin)
    decision = await controller.poll(after=2, queue=0)
    assert _replicas(stack.kube) == replicas
    return decision


async def _scale_down(stack: Stack, controller: Controller, keep: int) -> list[int]:
    """Down to ``keep`` through the controller, then the ReplicaSet and the kubelets."""
    await _pin(stack, controller, keep)
    names = replicaset_victims(stack.kube, len(stack.live) - keep)
    victims = [int(name.rsplit("-", 1)[1]) for name in names]
    await stack.delete(victims)
    return victims
