"""The controller's loop as timelines, with in-memory boundaries and a fake clock.

Each step reads: at t, the exporter says X and the Deployment runs N; the controller
patches (or not) and says why.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from scaler.config import ScalerConfig, load, parse_config
from scaler.controller.loop import Controller
from scaler.controller.metrics import build_metrics
from scaler.controller.reading import readers_for
from scaler.controller.target import TargetReconciler
from scaler.kube.errors import Conflict, KubeError
from scaler.logs import FIELDS
from scaler.policy import PAUSE_ANNOTATION, PIN_ANNOTATION, Reason
from scaler.sources.base import ConnectionFailed, EmptyResult, MetricSource, StaleSample
from scaler.sources.proxies import ProxyScraper
from tests.support.fakes import FakeActuator, FakeClock, FakeDeployment, FakeSource
from tests.support.router_stand_ins import FakeResolver, router_stand_ins

KEY = ("chatbot", "ollama")


def _config(**top: Any) -> ScalerConfig:
    data = load().model_dump(by_alias=True, exclude_none=True)
    target = data["targets"][0]
    target["metrics"][0]["query"] = "queue"
    target["metrics"][1]["query"] = "cpu"
    data.update(top)
    return parse_config(copy.deepcopy(data))


class Rig:
    """A controller over one target with fake boundaries, driven tick by tick."""

    def __init__(
        self,
        config: ScalerConfig | None = None,
        *,
        replicas: int = 2,
        direct: ProxyScraper | None = None,
        prometheus: MetricSource | None = None,
    ) -> None:
        self.config = config or _config()
        self.clock = FakeClock()
        self.source = FakeSource({"queue": 0.0, "cpu": {}})
        self.actuator = FakeActuator({KEY: FakeDeployment(replicas)})
        self.registry = CollectorRegistry()
        self.metrics = build_metrics(self.registry, self.config)
        self.leader = True
        target = self.config.targets[0]
        readers = readers_for(
            target, source=prometheus or self.source, metrics=self.metrics, scraper=direct
        )
        self.reconciler = TargetReconciler(
            target,
            config=self.config,
            readers=readers,
            actuator=self.actuator,
            metrics=self.metrics,
            is_leader=lambda: self.leader,
        )
        self.controller = Controller(
            [self.reconciler], metrics=self.metrics, clock=self.clock, sleep=self.clock.sleep
        )
        self.start = self.clock.now

    @property
    def replicas(self) -> int:
        return self.actuator.deployments[KEY].replicas

    async def at(self, t: float, **values: Any) -> Reason:
        """Move the clock to start + t, set metric values, run one reconcile."""
        self.clock.now = self.start + t
        self.source.values.update(values)
        decision = await self.reconciler.reconcile(self.clock.now)
        assert decision is not None
        return decision.reason

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def _cpu(replicas: int, cores: float) -> dict[str, float]:
    return {f"ollama-{i}": cores for i in range(replicas)}


async def test_a_queue_step_is_patched_at_the_next_poll() -> None:
    rig = Rig()
    assert await rig.at(0, queue=0.0, cpu=_cpu(2, 0.1)) is Reason.SCALE_DOWN_STABILIZED
    assert rig.replicas == 2 and rig.actuator.scaled == []
    # t=2: 8 requests in the system; +100 % of 2 per 15 s allows 4.
    assert await rig.at(2, queue=8.0) is Reason.SCALE_UP_LIMIT
    assert rig.actuator.scaled == [("chatbot", "ollama", 4)]
    (event,) = rig.actuator.events
    assert event[2] == "SuccessfulRescale" and event[3].startswith("New size: 4; reason: ")
    # t=4: still inside the 15 s period of that +2: hold at 4.
    assert await rig.at(4, cpu=_cpu(4, 1.0)) is Reason.SCALE_UP_LIMIT
    assert rig.replicas == 4
    # t=17: the period is over: 8.
    await rig.at(17)
    assert rig.replicas == 8
    labels = {"namespace": "chatbot", "deployment": "ollama"}
    assert rig.sample("scaler_desired_replicas", **labels) == 8
    assert (
        rig.sample("scaler_scale_operations_total", **labels, direction="up", result="success") == 2
    )
    assert rig.sample("scaler_metric_value", **labels, metric="queue") == 2.0  # 8 on 4


async def test_prometheus_down_holds_then_falls_back_without_oscillating_and_recovers() -> None:
    config = _config(fallback={"replicas": 5, "failureThreshold": 3})
    rig = Rig(config)
    await rig.at(0, queue=1.0, cpu=_cpu(2, 1.0))
    down = ConnectionFailed("connection refused")
    for t in (2, 4):
        assert await rig.at(t, queue=down, cpu=down) is Reason.METRICS_UNAVAILABLE
        assert rig.replicas == 2
    # The third poll in a row without any metric: hold at least the fallback.
    assert await rig.at(6) is Reason.FALLBACK
    assert rig.replicas == 5
    for t in range(8, 200, 2):  # while it stays down, nothing moves (kedacore/keda#4249)
        assert await rig.at(t) is Reason.FALLBACK
    assert rig.actuator.scaled == [("chatbot", "ollama", 5)]
    labels = {"namespace": "chatbot", "deployment": "ollama"}
    errors = rig.sample("scaler_metric_errors_total", **labels, metric="queue", kind="connection")
    assert errors == 99
    assert rig.sample("scaler_consecutive_failed_polls", **labels) == 99
    # Metrics come back quiet: the fallback count is remembered like a recommendation,
    # so the scale-down window holds 5 for 60 s after the last fallback (t=198) ...
    assert await rig.at(200, queue=0.0, cpu=_cpu(5, 0.1)) is Reason.SCALE_DOWN_STABILIZED
    assert rig.sample("scaler_last_good_poll_timestamp_seconds", **labels) == rig.start + 200
    assert await rig.at(256) is Reason.SCALE_DOWN_STABILIZED
    # ... then the rules bring it down: -50 % per 60 s, and not below minReplicas.
    assert await rig.at(258) is Reason.TOO_FEW_REPLICAS
    assert rig.replicas == 2


async def test_a_missing_metric_never_scales_down() -> None:
    rig = Rig(replicas=6)
    await rig.at(0, queue=6.0, cpu=_cpu(6, 1.6))
    stale = StaleSample("sample 40 s old")
    for t in range(2, 130, 2):
        reason = await rig.at(t, queue=stale, cpu=_cpu(6, 0.1))
        assert reason is Reason.METRICS_INCOMPLETE
    assert rig.actuator.scaled == []
    # But it may scale up on the metrics it has.
    assert await rig.at(130, cpu=_cpu(6, 3.0)) is Reason.TOO_MANY_REPLICAS
    assert rig.replicas == 10


async def test_pause_and_pin_annotations_are_honoured_on_the_next_tick() -> None:
    rig = Rig()
    deployment = rig.actuator.deployments[KEY]
    deployment.annotations[PAUSE_ANNOTATION] = "true"
    assert await rig.at(0, queue=8.0, cpu=_cpu(2, 2.0)) is Reason.PAUSED
    assert rig.actuator.scaled == []
    del deployment.annotations[PAUSE_ANNOTATION]
    assert await rig.at(2) is Reason.SCALE_UP_LIMIT
    assert rig.replicas == 4
    deployment.annotations[PIN_ANNOTATION] = "3"
    assert await rig.at(4) is Reason.PINNED
    assert rig.replicas == 3
    deployment.annotations[PIN_ANNOTATION] = "three"
    assert await rig.at(6) is Reason.PINNED
    assert rig.replicas == 3


async def test_an_existing_hpa_means_stand_by_with_one_event() -> None:
    rig = Rig()
    rig.actuator.deployments[KEY].hpa = "ollama-cpu"
    for t in (0, 2, 4):
        assert await rig.at(t, queue=8.0, cpu=_cpu(2, 2.0)) is Reason.HPA_CONFLICT
    assert rig.actuator.scaled == []
    assert [e[2] for e in rig.actuator.events] == ["HPAConflict"]
    assert rig.actuator.events[0][4] is True  # a Warning
    labels = {"namespace": "chatbot", "deployment": "ollama"}
    assert rig.sample("scaler_hpa_conflict", **labels) == 1
    rig.actuator.deployments[KEY].hpa = None
    assert await rig.at(6) is Reason.SCALE_UP_LIMIT
    assert rig.sample("scaler_hpa_conflict", **labels) == 0


async def test_shadow_mode_decides_and_exports_but_never_patches() -> None:
    rig = Rig(_config(mode="shadow"))
    rig.actuator.deployments[KEY].hpa = "ollama-cpu"  # running beside the CPU HPA
    assert await rig.at(0, queue=8.0, cpu=_cpu(2, 2.0)) is Reason.SCALE_UP_LIMIT
    assert rig.actuator.scaled == [] and rig.actuator.events == []
    labels = {"namespace": "chatbot", "deployment": "ollama"}
    assert rig.sample("scaler_desired_replicas", **labels) == 4
    assert rig.sample("scaler_current_replicas", **labels) == 2
    assert rig.sample("scaler_shadow_mode") == 1


async def test_only_the_leader_patches() -> None:
    rig = Rig()
    rig.leader = False
    await rig.at(0, queue=8.0, cpu=_cpu(2, 2.0))
    assert rig.actuator.scaled == []
    rig.leader = True
    await rig.at(2)
    assert rig.actuator.scaled == [("chatbot", "ollama", 4)]


async def test_a_failed_patch_leaves_no_scale_event_behind() -> None:
    rig = Rig()
    rig.actuator.fail_scale.append(Conflict("409 three times"))
    await rig.at(0, queue=8.0, cpu=_cpu(2, 2.0))
    assert rig.replicas == 2 and rig.reconciler.state.history.scale_up_events == ()
    labels = {"namespace": "chatbot", "deployment": "ollama"}
    assert (
        rig.sample("scaler_scale_operations_total", **labels, direction="up", result="error") == 1
    )
    # The next poll tries again, with no phantom event limiting the rate.
    await rig.at(2)
    assert rig.replicas == 4


async def test_an_unreadable_deployment_is_skipped_and_counted() -> None:
    rig = Rig()
    rig.actuator.fail_observe.append(KubeError("timeout", status=None))
    rig.clock.now = rig.start
    assert await rig.reconciler.reconcile(rig.clock.now) is None
    assert rig.sample("scaler_kubernetes_errors_total", operation="observe") == 1
    assert await rig.at(2, queue=8.0, cpu=_cpu(2, 2.0)) is Reason.SCALE_UP_LIMIT


async def test_the_queue_is_read_from_every_router_and_prometheus_covers_a_failure() -> None:
    data = _config().model_dump(by_alias=True, exclude_none=True)
    direct = data["targets"][0]["metrics"][0]["direct"]  # the default: the routers
    host = direct["host"]
    async with router_stand_ins(2) as (routers, addresses, port), aiohttp.ClientSession() as s:
        direct["port"] = port
        resolver = FakeResolver({host: addresses})
        rig = Rig(parse_config(data), direct=ProxyScraper(s, timeout=1, resolver=resolver))
        labels = {"namespace": "chatbot", "deployment": "ollama", "metric": "queue"}
        routers[0].queue.set(5)
        routers[0].in_flight.set(1)
        routers[1].in_flight.set(2)
        # t=0, the first poll: no pod list is needed to find the routers. They hold 8
        # while Prometheus's older scrape says 0: 8 on 2 pods, +100 % allows 4.
        assert await rig.at(0, queue=0.0, cpu=_cpu(2, 0.1)) is Reason.SCALE_UP_LIMIT
        assert rig.replicas == 4 and rig.sample("scaler_metric_value", **labels) == 8 / 2
        assert rig.sample("scaler_metric_reads_total", **labels, source="direct") == 1
        assert [q for q, _ in rig.source.calls if q == "queue"] == []
        # t=2: one router answers 503: this poll takes Prometheus's value (now 8 too).
        routers[1].server.status = 503
        assert await rig.at(2, queue=8.0) is Reason.SCALE_UP_LIMIT
        assert rig.sample("scaler_metric_errors_total", **labels, kind="http_status") == 1
        assert rig.sample("scaler_metric_reads_total", **labels, source="prometheus") == 1
        # t=4: no router is ready, so the name has no address (NXDOMAIN): Prometheus.
        resolver.names[host] = EmptyResult(f"{host} resolves to no address")
        await rig.at(4)
        assert rig.sample("scaler_metric_errors_total", **labels, kind="empty") == 1
        assert rig.sample("scaler_metric_reads_total", **labels, source="prometheus") == 2
        # t=6: both back, and quieter than Prometheus says: the routers win again.
        resolver.names[host] = addresses
        routers[1].server.status = 200
        routers[0].queue.set(0)
        await rig.at(6)
        assert rig.sample("scaler_metric_value", **labels) == 3 / 4
        assert rig.sample("scaler_metric_reads_total", **labels, source="direct") == 2
        assert resolver.lookups == [host] * 4


class _Broken(TargetReconciler):
    async def reconcile(self, now: float, *, trigger: str = "poll") -> None:  # type: ignore[override]
        raise RuntimeError("a bug")


async def test_the_loop_polls_each_target_on_its_interval_and_survives_a_bug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = _config(pollInterval=2)
    second = copy.deepcopy(config.model_dump(by_alias=True, exclude_none=True))
    second["targets"].append(copy.deepcopy(second["targets"][0]))
    second["targets"][1]["deployment"] = "other"
    second["targets"][1]["pollInterval"] = 5
    config = parse_config(second)
    rig = Rig(config)
    rig.actuator.deployments[("chatbot", "other")] = FakeDeployment(2)
    other = TargetReconciler(
        config.targets[1],
        config=config,
        readers=readers_for(config.targets[1], source=rig.source, metrics=rig.metrics),
        actuator=rig.actuator,
        metrics=rig.metrics,
        is_leader=lambda: True,
    )
    broken = _Broken(
        config.targets[0],
        config=config,
        readers=readers_for(config.targets[0], source=rig.source, metrics=rig.metrics),
        actuator=rig.actuator,
        metrics=rig.metrics,
        is_leader=lambda: True,
    )
    controller = Controller(
        [rig.reconciler, other, broken], metrics=rig.metrics, clock=rig.clock, sleep=rig.clock.sleep
    )
    rig.source.values.update(queue=0.0, cpu=_cpu(2, 0.1))
    for _ in range(6):
        next_due = await controller.tick()
        await rig.clock.sleep(next_due - rig.clock.now)
    polled = [now - rig.start for _, now in rig.source.calls if _ == "queue"]
    # Target 1 every 2 s, target 2 every 5 s, on one clock read per tick.
    assert polled == [0, 0, 2, 4, 5, 6, 8]
    assert "reconcile failed" in caplog.text


async def test_each_metric_reports_its_raw_average_as_the_hpa_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # currentMetrics[].averageValue: the queue per existing replica (External
    # AverageValue), and the CPU's raw usage per pod beside its utilization.
    rig = Rig(replicas=3)
    caplog.set_level(logging.INFO, logger="scaler.controller")
    await rig.at(0, queue=3.5, cpu={"ollama-0": 1.5, "ollama-1": 1.6, "ollama-2": 1.7})
    labels = {"namespace": "chatbot", "deployment": "ollama"}
    assert rig.sample("scaler_metric_average_value", **labels, metric="queue") == 1.167
    assert rig.sample("scaler_metric_average_value", **labels, metric="cpu") == 1.6
    assert rig.sample("scaler_metric_value", **labels, metric="cpu") == 80  # percent
    (record,) = [r for r in caplog.records if getattr(r, FIELDS, {}).get("metrics")]
    metrics = getattr(record, FIELDS)["metrics"]
    assert metrics["queue"]["average_value"] == "1167m"  # ceil(3500 / 3)
    assert metrics["cpu"]["average_value"] == "1600m"
    assert "metric queue = 1.167 (averageValue 1167m) against target 1" in record.getMessage()
