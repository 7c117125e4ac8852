"""The controller's decisions on the watch-fed caches, with the real kubernetes-asyncio
client and the fake API server over HTTP: an API server gone for longer than the
bound holds the target (no scale, down or up) until it is back; a hundred targets,
in one namespace or over ten, all decide in one tick."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from scaler.config import ScalerConfig, parse_config
from scaler.controller.loop import Controller
from scaler.controller.metrics import build_metrics
from scaler.controller.reading import readers_for
from scaler.controller.target import TargetReconciler
from scaler.kube.cache import KUBE_STALE_AFTER, CachedActuator, Scope
from scaler.kube.client import api_client
from scaler.kube.errors import KubeError
from tests.support.fake_kube import Cluster, running_cluster
from tests.support.fakes import FakeClock, FakeSource
from tests.support.tcp_relay import TcpRelay
from tests.support.waits import until

T0 = 1_000_000.0  # unix seconds of the first decision


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        yield cluster


def _config(targets: list[tuple[str, str]]) -> ScalerConfig:
    metric = {
        "name": "queue",
        "type": "External",
        "query": "queue",
        "target": {"type": "AverageValue", "averageValue": 1},
    }
    down = {"stabilizationWindowSeconds": 0}  # a scale-down is possible at once
    return parse_config(
        {
            "prometheusUrl": "http://127.0.0.1:9",
            "targets": [
                {
                    "namespace": ns,
                    "deployment": name,
                    "minReplicas": 1,
                    "maxReplicas": 10,
                    "metrics": [metric],
                    "behavior": {"scaleDown": down},
                }
                for ns, name in targets
            ],
        }
    )


class Rig:
    """The targets' reconcilers on one ``CachedActuator`` whose caches run here."""

    def __init__(
        self, api: Any, config: ScalerConfig, clock: FakeClock, scope: Scope = "namespace"
    ) -> None:
        names: dict[str, list[str]] = {}
        for target in config.targets:
            names.setdefault(target.namespace, []).append(target.deployment)
        self.actuator = CachedActuator(api, names, request_timeout=1.0, clock=clock, scope=scope)
        self.source = FakeSource({"queue": 0.0})
        self.registry = CollectorRegistry()
        metrics = build_metrics(self.registry, config)
        self.reconcilers = [
            TargetReconciler(
                target,
                config=config,
                readers=readers_for(target, source=self.source, metrics=metrics),
                actuator=self.actuator,
                metrics=metrics,
                is_leader=lambda: True,
            )
            for target in config.targets
        ]
        self.controller = Controller(self.reconcilers, metrics=metrics, clock=lambda: T0)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Rig]:
        tasks = [
            asyncio.create_task(loop, name=name)
            for cache in self.actuator.caches.values()
            for name, loop in cache.runs().items()
        ]
        try:
            assert await self.actuator.wait_synced(10.0)
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def _patches(kube: Cluster) -> list[int]:
    return [r.body["spec"]["replicas"] for r in kube.fake.calls("PATCH", "/scale$")]


async def test_an_api_server_gone_longer_than_the_bound_holds_then_scaling_resumes(
    kube: Cluster, tmp_path: Path
) -> None:
    kube.fake.add_deployment("ml", "ollama", replicas=4)
    for i in range(4):
        kube.fake.add_pod("ml", f"ollama-{i}", labels={"app": "ollama"})
    config_path = kube.fake.write_kubeconfig(tmp_path / "relayed")
    clock = FakeClock()  # monotonic seconds, for the caches' freshness
    async with TcpRelay(int(kube.fake.url.rsplit(":", 1)[1])) as relay:
        text = yaml.safe_load(config_path.read_text())
        text["clusters"][0]["cluster"]["server"] = relay.url
        config_path.write_text(yaml.safe_dump(text))
        async with (
            api_client(config_path) as api,
            Rig(api, _config([("ml", "ollama")]), clock).running() as rig,
        ):
            (target,) = rig.reconcilers
            rig.source.values["queue"] = 4.0  # 1 per pod: hold at 4
            assert (await target.reconcile(T0)) is not None
            await relay.cut()
            clock.now += KUBE_STALE_AFTER - 1  # still within the bound: decides on the cache
            assert (await target.reconcile(T0 + 10)) is not None
            clock.now += 2  # past it: the cache is no evidence any more
            with pytest.raises(KubeError, match="cache of deployments in ml stale"):
                await rig.actuator.observe("ml", "ollama")
            for t, queue in ((20, 0.0), (30, 40.0), (40, 0.0)):  # wants 1, then 10, then 1
                rig.source.values["queue"] = queue
                assert await target.reconcile(T0 + t) is None  # holds: no decision
            assert _patches(kube) == []
            errors = rig.sample("scaler_kubernetes_errors_total", operation="observe")
            assert errors == 3.0  # one per held decision (the direct observe above is none)
            await relay.restore()
            cache = rig.actuator.caches["ml"]
            await until(
                lambda: (
                    all(i.fresh(clock(), KUBE_STALE_AFTER) for i in (cache.deployments, cache.pods))
                    and cache.hpas.fresh(clock(), KUBE_STALE_AFTER)
                ),
                what="the caches heard from the API server again",
            )
            rig.source.values["queue"] = 0.0
            assert (await target.reconcile(T0 + 50)) is not None
    assert _patches(kube) == [1]
    assert kube.fake.get("deployments", "ml", "ollama")["spec"]["replicas"] == 1


@pytest.mark.parametrize("scope", ["namespace", "cluster"])
@pytest.mark.parametrize(
    "namespaces", [pytest.param(1, id="one-namespace"), pytest.param(10, id="ten-namespaces")]
)
async def test_a_hundred_targets_all_decide_in_one_tick(
    kube: Cluster, namespaces: int, scope: Scope
) -> None:
    targets = [(f"ns-{i % namespaces}", f"model-{i}") for i in range(100)]
    for ns, name in targets:
        kube.fake.add_deployment(ns, name, replicas=2)
        for j in range(2):
            kube.fake.add_pod(ns, f"{name}-{j}", labels={"app": name})
    rig = Rig(kube.api, _config(targets), FakeClock(), scope)
    # 3 per pod: every target wants 6, which the HPA's default scaleUp allows at once
    # (the larger of +100 % and +4 pods per 15 s).
    rig.source.values["queue"] = 6.0
    async with rig.running():
        await rig.controller.tick()
    assert rig.controller.failing() == [] and set(rig.controller.raised.values()) == {0}
    decided = [
        rig.sample(
            "scaler_decisions_by_trigger_total", namespace=ns, deployment=name, trigger="poll"
        )
        for ns, name in targets
    ]
    assert decided == [1.0] * 100
    assert sorted(set(_patches(kube))) == [6]
    assert len(_patches(kube)) == 100
    lists = {k: n for k, n in kube.fake.request_counts().items() if k[0] in ("list", "watch")}
    kinds = ("deployments", "pods", "horizontalpodautoscalers")
    caches = 1 if scope == "cluster" else namespaces  # one cache of all namespaces, or one each
    assert lists == {(verb, kind): caches for verb in ("list", "watch") for kind in kinds}
