"""The simulator and the controller make the same decisions from the same world.

A built-in scenario runs in the simulator with a config that has a fallback, a
metric outage, a pause and a pin, recording what each poll saw (the scale, the pods,
each reading, the annotations) and decided. The same polls are then fed through the
controller's reconcile at the same times (the recorded times are its clock): an
actuator returns the recorded Deployment, each metric's reader (the controller's own
``Counted`` read path over a recorded one) returns the recorded reading, and an
outage is a Prometheus that cannot be reached. Every poll must come out alike:
replicas, reason and recommendation, and the same scale patches at the same times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from scaler.config import load
from scaler.controller.metrics import build_metrics
from scaler.controller.reading import Counted, MetricLabels
from scaler.controller.target import TargetReconciler
from scaler.kube.workload import Workload
from scaler.policy import PodValues, Reason, TotalValue, Unavailable
from scaler.simulate.decider import Poll
from scaler.simulate.policies import build_policy
from scaler.simulate.replica import ModelParams
from scaler.simulate.runner import run_policy, service_times
from scaler.simulate.scenarios import build_scenario
from scaler.simulate.types import OverrideWindow
from scaler.sources.base import ConnectionFailed
from tests.test_simulate_overrides import write_config

# The burst's crowd arrives at t=600, into a metric outage; a pause and a pin follow.
WINDOWS = (
    OverrideWindow("outage", 600.0, 700.0),
    OverrideWindow("pause", 1000.0, 1150.0),
    OverrideWindow("pin", 1400.0, 1500.0, 7),
)


@dataclass
class RecordedPath:
    """One metric's recorded readings by poll time; a missing or unavailable one is
    a Prometheus that cannot be reached."""

    metric: str
    polls: dict[float, Poll]

    async def fetch(self, now: float, ready_ips: Sequence[str]) -> TotalValue | PodValues:
        reading = self.polls[now].seen.observation.readings.get(self.metric)
        if reading is None or isinstance(reading, Unavailable):
            raise ConnectionFailed("connection refused")
        return reading


@dataclass
class RecordedActuator:
    """The Deployment as the simulator had it at each poll; patches are recorded."""

    polls: dict[float, Poll]
    now: float = 0.0
    scaled: list[tuple[float, int]] = field(default_factory=list)

    async def observe(self, namespace: str, deployment: str) -> Workload:
        seen = self.polls[self.now].seen
        scale = seen.observation
        return Workload(scale.spec_replicas, scale.status_replicas, scale.pods, seen.annotations)

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.scaled.append((self.now, replicas))

    async def event(
        self, namespace: str, deployment: str, *, reason: str, message: str, warning: bool = False
    ) -> None:
        pass


def _simulate(config: Path) -> list[Poll]:
    trace = replace(build_scenario("burst", seed=3), overrides=WINDOWS)
    params = ModelParams()
    times = service_times(trace, params, exponential=False, seed=3)
    policy = build_policy("config", config_path=config, environ={})
    polls: list[Poll] = []
    run_policy(
        trace, times, policy, params, seed=3, burst_at=None, reuse_proposals=False, record=polls
    )
    return polls


async def test_the_controller_decides_every_recorded_poll_as_the_simulator_did(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path, fallback={"replicas": 6, "failureThreshold": 3})
    polls = _simulate(path)
    by_time = {poll.now: poll for poll in polls}
    assert len(by_time) == len(polls) > 1000  # every 2 s over the 2,100 s of the burst

    config = load(path, {})
    target = config.targets[0]
    metrics = build_metrics(CollectorRegistry(), config)
    readers = {
        m.name: Counted(
            RecordedPath(m.name, by_time),
            source="prometheus",
            at=MetricLabels(target.key, (target.namespace, target.deployment), m.name, metrics),
        )
        for m in target.metrics
    }
    actuator = RecordedActuator(by_time)
    reconciler = TargetReconciler(
        target,
        config=config,
        readers=readers,
        actuator=actuator,
        metrics=metrics,
        is_leader=lambda: True,
    )
    simulated, controlled = [], []
    for poll in polls:
        actuator.now = poll.now
        decision = await reconciler.reconcile(poll.now)
        assert decision is not None
        expected = poll.decision
        simulated.append((poll.now, expected.replicas, expected.reason, expected.recommendation))
        controlled.append((poll.now, decision.replicas, decision.reason, decision.recommendation))
    assert controlled == simulated
    changes = [(p.now, p.decision.replicas) for p in polls if p.decision.changes_scale]
    assert actuator.scaled == changes
    # The run went through every override, and the rules scaled around them.
    reasons = {reason for _, _, reason, _ in simulated}
    overrides = {Reason.METRICS_UNAVAILABLE, Reason.FALLBACK, Reason.PAUSED, Reason.PINNED}
    assert overrides | {Reason.TOO_MANY_REPLICAS, Reason.SCALE_DOWN_LIMIT} <= reasons
    assert (604.0, 6) in changes and (1400.0, 7) in changes and len(changes) >= 8
