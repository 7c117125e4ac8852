"""In-memory stand-ins for the controller's two boundaries, and a fake clock.

They fake our own seams (``MetricSource``, ``Actuator``), not HTTP: the real clients
are tested against a real Prometheus and a fake API server elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from scaler.kube.errors import KubeError
from scaler.kube.workload import Workload
from scaler.policy import Pod
from scaler.sources.base import MetricUnavailable, PodSamples, Sample


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class FakeSource:
    """Answers each query with a value, per-pod values, or a failure to raise."""

    values: dict[str, float | Mapping[str, float] | MetricUnavailable] = field(default_factory=dict)
    calls: list[tuple[str, float]] = field(default_factory=list)

    async def value(self, query: str, *, now: float) -> Sample:
        answer = self._answer(query, now)
        assert isinstance(answer, float | int), f"{query} is not a single value"
        return Sample(float(answer), now)

    async def per_pod(self, query: str, *, now: float) -> PodSamples:
        answer = self._answer(query, now)
        assert isinstance(answer, Mapping), f"{query} is not per pod"
        return PodSamples({pod: Sample(v, now) for pod, v in answer.items()})

    def _answer(self, query: str, now: float) -> float | Mapping[str, float]:
        self.calls.append((query, now))
        answer = self.values[query]
        if isinstance(answer, MetricUnavailable):
            raise answer
        return answer


@dataclass
class FakeDeployment:
    replicas: int
    status_replicas: int | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    hpa: str | None = None
    cpu_request: float = 2.0
    started: float = 0.0


@dataclass
class FakeActuator:
    """Deployments in memory; ``scale`` applies at once. Failures can be scripted."""

    deployments: dict[tuple[str, str], FakeDeployment] = field(default_factory=dict)
    scaled: list[tuple[str, str, int]] = field(default_factory=list)
    events: list[tuple[str, str, str, str, bool]] = field(default_factory=list)
    fail_observe: list[KubeError] = field(default_factory=list)
    fail_scale: list[KubeError] = field(default_factory=list)

    async def observe(self, namespace: str, deployment: str) -> Workload:
        if self.fail_observe:
            raise self.fail_observe.pop(0)
        d = self.deployments[(namespace, deployment)]
        pods = tuple(
            Pod(
                f"{deployment}-{i}",
                ready=True,
                ready_transition_time=d.started,
                start_time=d.started,
                request=d.cpu_request,
            )
            for i in range(d.replicas)
        )
        status = d.replicas if d.status_replicas is None else d.status_replicas
        return Workload(d.replicas, status, pods, dict(d.annotations), d.hpa)

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        if self.fail_scale:
            raise self.fail_scale.pop(0)
        self.scaled.append((namespace, deployment, replicas))
        self.deployments[(namespace, deployment)].replicas = replicas

    async def event(
        self, namespace: str, deployment: str, *, reason: str, message: str, warning: bool = False
    ) -> None:
        self.events.append((namespace, deployment, reason, message, warning))
