"""Pods as the replica calculator sees them, and the HPA's ``groupPods``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

# kube-controller-manager defaults for the two CPU readiness flags.
DEFAULT_CPU_INITIALIZATION_PERIOD = 300.0
DEFAULT_INITIAL_READINESS_DELAY = 30.0


class PodPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class Pod:
    """The parts of a pod the HPA looks at. Times are seconds on the caller's clock.

    ``ready``: the Ready condition's status, ``None`` when the pod has no such condition.
    ``ready_transition_time``: that condition's ``lastTransitionTime``.
    ``request``: the pod's summed resource request for the Utilization metric (e.g.
    CPU cores); ``None`` when a container lacks one.
    ``unschedulable``: the scheduler's message while no node can take the pod
    (PodScheduled False, reason Unschedulable), else ``None``. Such a pod is Pending,
    so the calculator already counts it as unready, as the HPA does; the controller
    reports it.
    """

    name: str
    phase: PodPhase = PodPhase.RUNNING
    ready: bool | None = True
    ready_transition_time: float | None = None
    start_time: float | None = None
    deleting: bool = False
    request: float | None = None
    unschedulable: str | None = None

    @property
    def is_running_and_ready(self) -> bool:
        return self.phase is PodPhase.RUNNING and self.ready is True


@dataclass(frozen=True, slots=True)
class PodSample:
    """One pod's metric value; ``timestamp``/``window`` describe the sample (seconds).

    ``timestamp=None`` means "as fresh as ``now``".
    """

    value: float
    timestamp: float | None = None
    window: float = 0.0


class PodGroups(NamedTuple):
    ready_count: int
    unready: frozenset[str] = frozenset()
    missing: frozenset[str] = frozenset()
    ignored: frozenset[str] = frozenset()


def group_pods(
    pods: tuple[Pod, ...],
    samples: Mapping[str, PodSample],
    *,
    cpu: bool,
    now: float,
    cpu_initialization_period: float = DEFAULT_CPU_INITIALIZATION_PERIOD,
    initial_readiness_delay: float = DEFAULT_INITIAL_READINESS_DELAY,
) -> PodGroups:
    """``groupPods``: sort pods into ready, unready, missing a metric, and ignored.

    Deleting and failed pods are ignored; pending pods are unready; for CPU only, a
    pod is also unready while it has no Ready condition or start time, while it is
    within its CPU initialization period and either not ready or its sample predates
    one metric window after its readiness changed, or when it is not ready and has
    never been ready (its readiness changed within the initial delay after start).
    """
    ready_count = 0
    unready: list[str] = []
    missing: list[str] = []
    ignored: list[str] = []
    failed, pending = PodPhase.FAILED, PodPhase.PENDING
    for pod in pods:
        if pod.deleting or pod.phase is failed:
            ignored.append(pod.name)
        elif pod.phase is pending:
            unready.append(pod.name)
        elif (sample := samples.get(pod.name)) is None:
            missing.append(pod.name)
        elif cpu and _cpu_unready(
            pod, sample, now, cpu_initialization_period, initial_readiness_delay
        ):
            unready.append(pod.name)
        else:
            ready_count += 1
    if not (unready or missing or ignored):
        return PodGroups(ready_count, _NONE, _NONE, _NONE)  # the common case, kept cheap
    return PodGroups(ready_count, frozenset(unready), frozenset(missing), frozenset(ignored))


_NONE: frozenset[str] = frozenset()


def _cpu_unready(
    pod: Pod,
    sample: PodSample,
    now: float,
    cpu_initialization_period: float,
    initial_readiness_delay: float,
) -> bool:
    if pod.ready is None or pod.start_time is None:
        return True
    transition = pod.ready_transition_time if pod.ready_transition_time is not None else 0.0
    if pod.start_time + cpu_initialization_period > now:
        sample_time = now if sample.timestamp is None else sample.timestamp
        return pod.ready is False or sample_time < transition + sample.window
    return pod.ready is False and pod.start_time + initial_readiness_delay > transition


def grouping_valid_until(
    pods: tuple[Pod, ...],
    samples: Mapping[str, PodSample],
    *,
    now: float,
    cpu_initialization_period: float = DEFAULT_CPU_INITIALIZATION_PERIOD,
) -> float:
    """Until when (exclusive) ``group_pods(..., cpu=True)`` sorts these pods and samples
    as it does at ``now``.

    A pod's group changes with time only when its CPU initialization period ends, or,
    inside that period, when its sample has no timestamp and so counts as taken now.
    """
    until = math.inf
    for pod in pods:
        if pod.start_time is None or pod.ready is None:
            continue  # unready whatever the time
        ends = pod.start_time + cpu_initialization_period
        if ends > now:
            sample = samples.get(pod.name)
            if sample is not None and sample.timestamp is None:
                return now
            until = min(until, ends)
    return until


def ready_pod_count(pods: tuple[Pod, ...]) -> int:
    """``getReadyPodsCount``: running pods whose Ready condition is true."""
    return sum(1 for pod in pods if pod.is_running_and_ready)
