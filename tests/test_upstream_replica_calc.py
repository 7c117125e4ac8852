"""Upstream Kubernetes replica-calculator test cases, translated to the calculator's API.

Source: kubernetes/kubernetes ``pkg/controller/podautoscaler/replica_calculator_test.go``
(the recent table-driven layout with ``TestReplicaCalcResourceScale``, plus the
standalone ``TestReplicaCalc*`` functions and ``TestGroupPods``). Only the cases (inputs
and expected outputs) are carried over; each table names the upstream function.

How the upstream fixtures map to ours:

* Every pod has two containers. ``levels`` are per container and each container requests
  ``requests[i]``; the pod's usage and request are the sums (upstream's raw value is
  ``numContainersPerPod * level``), passed here in cores (milli / 1000).
* The pod's Ready condition has no ``lastTransitionTime`` and, unless ``podStartTime`` is
  given, ``startTime`` is Go's zero time; resource samples carry the zero timestamp
  (``tc.timestamp`` is never set) and a one-minute window. ``GO_ZERO_TIME`` stands in for
  the zero time on our clock.
* ``currentReplicas`` is both the spec and the status replica count.
* Container-scoped cases (``container: "container2"`` ...) and Object metrics are not
  ported: the engine has neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from scaler.policy.calculator import CalculationError, Context, Tolerances, calculate
from scaler.policy.pods import Pod, PodPhase, PodSample, group_pods
from scaler.policy.readings import MetricSpec, PodValues, SourceType, TargetType, TotalValue

NOW = 1000.0
MINUTE = 60.0
TOLERANCE = 0.1  # defaultTestingTolerance
CPU_INITIALIZATION_PERIOD = 120.0  # defaultTestingCPUInitializationPeriod
INITIAL_READINESS_DELAY = 10.0  # defaultTestingDelayOfInitialReadinessStatus
GO_ZERO_TIME = NOW - 6.4e10  # Go's zero time.Time (year 1)
HOT = NOW  # hotCPUCreationTime()
COOL = NOW - 3 * MINUTE  # coolCPUCreationTime()
CONTAINERS = 2  # numContainersPerPod
MAX_INT64 = 2**63 - 1
MAX_INT32 = 2**31 - 1
DEFAULT_TOLERANCES = Tolerances(TOLERANCE, TOLERANCE)

T, F = True, False
RUNNING, PENDING, FAILED = PodPhase.RUNNING, PodPhase.PENDING, PodPhase.FAILED


@dataclass(frozen=True)
class Fixture:
    """``replicaCalcTestCase`` / ``calcScenario``: pods and their state."""

    current: int
    requests: tuple[int, ...] = ()  # per container, milli; pods past the end have none
    readiness: tuple[bool, ...] | None = None
    start_times: tuple[float, ...] | None = None
    phases: tuple[PodPhase, ...] | None = None
    deleting: tuple[bool, ...] | None = None

    def pods(self) -> tuple[Pod, ...]:
        count = self.current
        if self.phases is not None and len(self.phases) > count:
            count = len(self.phases)  # failed pods are not counted in currentReplicas
        pods = []
        for i in range(count):
            ready = True
            if self.readiness is not None and i < len(self.readiness):
                ready = self.readiness[i]
            request = CONTAINERS * self.requests[i] / 1000 if i < len(self.requests) else None
            pods.append(
                Pod(
                    name=f"test-pod-{i}",
                    phase=self.phases[i] if self.phases is not None else RUNNING,
                    ready=ready,
                    ready_transition_time=GO_ZERO_TIME,
                    start_time=(
                        self.start_times[i] if self.start_times is not None else GO_ZERO_TIME
                    ),
                    deleting=self.deleting[i] if self.deleting is not None else False,
                    request=request,
                )
            )
        return tuple(pods)

    def context(self, tolerances: Tolerances = DEFAULT_TOLERANCES) -> Context:
        return Context(
            spec_replicas=self.current,
            status_replicas=self.current,
            pods=self.pods(),
            tolerances=tolerances,
            now=NOW,
            cpu_initialization_period=CPU_INITIALIZATION_PERIOD,
            initial_readiness_delay=INITIAL_READINESS_DELAY,
        )


# ---------------------------------------------------------------------------------------
# Resource (CPU Utilization) cases -> GetResourceReplicas
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceCase:
    fixture: Fixture
    levels: tuple[int, ...]  # per container, milli (makePodMetricLevels)
    target: int  # targetUtilization, percent
    expected: int = 0
    utilization: int = 0  # expectedUtilization
    pod_names: tuple[str, ...] = ()  # resource.podNames
    tolerances: Tolerances = DEFAULT_TOLERANCES
    error: str | None = None  # expected error text (substring)


def _cpu_readings(case: ResourceCase) -> PodValues:
    samples = {}
    for i, level in enumerate(case.levels):
        name = case.pod_names[i] if i < len(case.pod_names) else f"test-pod-{i}"
        samples[name] = PodSample(CONTAINERS * level / 1000, GO_ZERO_TIME, MINUTE)
    return PodValues(samples)


def cpu_requests(n: int, milli: int = 1000) -> tuple[int, ...]:
    return (milli,) * n


R_9_10_11 = (900, 1000, 1100)
# TestReplicaCalcComputedToleranceAlgImplementation: perPodRequested = 300m with jitter
JITTER_REQUESTS = (400, 200, 310, 290, 302, 298, 301, 299, 300, 300)

# upstream: TestReplicaCalcResourceScale (non-container cases)
RESOURCE_SCALE = [
    pytest.param(ResourceCase(Fixture(3, cpu_requests(3)), (300, 500, 700), 30, 5, 50),
                 id="TestReplicaCalcResourceScale/scale up"),
    pytest.param(ResourceCase(Fixture(3, cpu_requests(3), readiness=(F, T, T)),
                              (300, 500, 700), 30, 4, 60),
                 id="TestReplicaCalcResourceScale/scale up: unready pod scales less"),
    pytest.param(ResourceCase(Fixture(3, cpu_requests(3), start_times=(HOT, COOL, COOL)),
                              (300, 500, 700), 30, 4, 60),
                 id="TestReplicaCalcResourceScale/scale up: hot-CPU pod scales less"),
    pytest.param(ResourceCase(Fixture(3, cpu_requests(3), readiness=(T, F, F)),
                              (400, 500, 700), 30, 3, 40),
                 id="TestReplicaCalcResourceScale/no scale: unready pods ignored"),
    pytest.param(ResourceCase(Fixture(3, cpu_requests(3), readiness=(T, F, F),
                                      start_times=(COOL, HOT, HOT)),
                              (400, 500, 700), 30, 3, 40),
                 id="TestReplicaCalcResourceScale/no scale: hot-CPU pods ignored"),
    pytest.param(ResourceCase(Fixture(2, cpu_requests(4), readiness=(T, T, F, F),
                                      phases=(RUNNING, RUNNING, FAILED, FAILED)),
                              (500, 700), 30, 4, 60),
                 id="TestReplicaCalcResourceScale/scale up: failed pods ignored"),
    pytest.param(ResourceCase(Fixture(2, cpu_requests(4), readiness=(T, T, F, F),
                                      phases=(RUNNING,) * 4, deleting=(F, F, T, T)),
                              (500, 700), 30, 4, 60),
                 id="TestReplicaCalcResourceScale/scale up: pods being deleted are ignored"),
    pytest.param(ResourceCase(Fixture(5, cpu_requests(5)), (100, 300, 500, 250, 250), 50, 3, 28),
                 id="TestReplicaCalcResourceScale/scale down"),
    pytest.param(ResourceCase(Fixture(5, cpu_requests(5), readiness=(T, T, T, F, F)),
                              (100, 300, 500, 250, 250), 50, 2, 30),
                 id="TestReplicaCalcResourceScale/scale down: exclude unready pods"),
    pytest.param(ResourceCase(Fixture(5, cpu_requests(5), readiness=(T, F, F, F, F),
                                      phases=(RUNNING, PENDING, PENDING, PENDING, PENDING)),
                              (100,), 50, 1, 10),
                 id="TestReplicaCalcResourceScale/scale down: exclude unscheduled pods"),
    pytest.param(ResourceCase(Fixture(5, cpu_requests(5),
                                      start_times=(COOL, COOL, COOL, HOT, HOT)),
                              (100, 300, 500, 250, 250), 50, 2, 30),
                 id="TestReplicaCalcResourceScale/scale down: ignore hot-CPU pods"),
    pytest.param(ResourceCase(Fixture(5, cpu_requests(7), readiness=(T, T, T, T, T, F, F),
                                      phases=(RUNNING,) * 5 + (FAILED, FAILED)),
                              (100, 300, 500, 250, 250), 50, 3, 28),
                 id="TestReplicaCalcResourceScale/scale down: failed pods ignored"),
    pytest.param(ResourceCase(Fixture(5, cpu_requests(7), readiness=(T, T, T, T, T, F, F),
                                      phases=(RUNNING,) * 7, deleting=(F,) * 5 + (T, T)),
                              (100, 300, 500, 250, 250), 50, 3, 28),
                 id="TestReplicaCalcResourceScale/scale down: pods being deleted are ignored"),
]  # fmt: skip

# upstream: the standalone TestReplicaCalc* functions with a resource metric
RESOURCE_STANDALONE = [
    pytest.param(ResourceCase(Fixture(1, cpu_requests(1)), (100,), 100,
                              pod_names=("an-older-pod-name",),
                              error="no metrics returned matched known pods"),
                 id="TestReplicaCalcDisjointResourcesMetrics"),
    pytest.param(ResourceCase(Fixture(3, R_9_10_11), (1010, 1030, 1020), 100, 3, 102),
                 id="TestReplicaCalcTolerance"),
    pytest.param(ResourceCase(Fixture(3, R_9_10_11), (909, 1010, 1111), 100, 4, 101,
                              tolerances=Tolerances(0.0, 0.0)),
                 id="TestReplicaCalcConfigurableTolerance/Outside of a 0% tolerance"),
    pytest.param(ResourceCase(Fixture(3, R_9_10_11), (1890, 1910, 1900), 100, 3, 190,
                              tolerances=Tolerances(TOLERANCE, 2.0)),
                 id="TestReplicaCalcConfigurableTolerance/Within a 200% scale-up tolerance"),
    pytest.param(ResourceCase(Fixture(3, R_9_10_11), (1100, 1080, 1090), 100, 4, 109,
                              tolerances=Tolerances(2.0, 0.08)),
                 id="TestReplicaCalcConfigurableTolerance/Outside 8% scale-up tolerance (and "
                    "superfuous scale-down tolerance)"),
    pytest.param(ResourceCase(Fixture(3, R_9_10_11), (660, 640, 650), 100, 3, 65,
                              tolerances=Tolerances(0.36, TOLERANCE)),
                 id="TestReplicaCalcConfigurableTolerance/Within a 36% scale-down tolerance"),
    pytest.param(ResourceCase(Fixture(3, R_9_10_11), (660, 640, 650), 100, 2, 65,
                              tolerances=Tolerances(0.34, TOLERANCE)),
                 id="TestReplicaCalcConfigurableTolerance/Outside a 34% scale-down tolerance"),
    pytest.param(ResourceCase(Fixture(4, cpu_requests(4)), (4000, 9500, 3000, 7000, 3200, 2000),
                              100, 24, 587),
                 id="TestReplicaCalcSuperfluousMetrics"),
    pytest.param(ResourceCase(Fixture(4, cpu_requests(4)), (400, 95), 100, 3, 24),
                 id="TestReplicaCalcMissingMetrics"),
    # upstream's message ("no metrics returned from resource metrics API") comes from
    # the metrics client; the calculator must refuse, whatever it says.
    pytest.param(ResourceCase(Fixture(4, cpu_requests(3)), (), 100, error=""),
                 id="TestReplicaCalcEmptyMetrics"),
    pytest.param(ResourceCase(Fixture(1, ()), (200,), 100, error="missing request for"),
                 id="TestReplicaCalcEmptyCPURequest"),
    pytest.param(ResourceCase(Fixture(2, cpu_requests(2)), (1000,), 100, 2, 100),
                 id="TestReplicaCalcMissingMetricsNoChangeEq"),
    pytest.param(ResourceCase(Fixture(2, cpu_requests(2)), (1900,), 100, 2, 190),
                 id="TestReplicaCalcMissingMetricsNoChangeGt"),
    pytest.param(ResourceCase(Fixture(2, cpu_requests(2)), (600,), 100, 2, 60),
                 id="TestReplicaCalcMissingMetricsNoChangeLt"),
    pytest.param(ResourceCase(Fixture(3, cpu_requests(3), readiness=(F, T, T)), (100, 450), 50,
                              3, 45),
                 id="TestReplicaCalcMissingMetricsUnreadyChange"),
    pytest.param(ResourceCase(Fixture(3, cpu_requests(3), start_times=(HOT, COOL, COOL)),
                              (100, 450), 50, 3, 45),
                 id="TestReplicaCalcMissingMetricsHotCpuNoChange"),
    pytest.param(ResourceCase(Fixture(3, cpu_requests(3), readiness=(F, T, T)), (100, 2000), 50,
                              4, 200),
                 id="TestReplicaCalcMissingMetricsUnreadyScaleUp"),
    pytest.param(ResourceCase(Fixture(3, cpu_requests(3), readiness=(F, T, T),
                                      start_times=(HOT, COOL, COOL)),
                              (100, 2000), 50, 4, 200),
                 id="TestReplicaCalcMissingMetricsHotCpuScaleUp"),
    pytest.param(ResourceCase(Fixture(4, cpu_requests(4), readiness=(F, T, T, T)),
                              (100, 100, 100), 50, 3, 10),
                 id="TestReplicaCalcMissingMetricsUnreadyScaleDown"),
    pytest.param(ResourceCase(Fixture(4, (1000, 1000, 2000, 2000), readiness=(F, T, T, T)),
                              (200, 100, 100), 300, 2, 6),
                 id="TestReplicaCalcMissingMetricsScaleDownTargetOver100"),
    pytest.param(ResourceCase(Fixture(2, cpu_requests(3), phases=(RUNNING,) * 3), (100, 100), 50,
                              2, 10),
                 id="TestReplicaCalcDuringRollingUpdateWithMaxSurge"),
    # target = 1 / (2 * 0.9) + .01 -> 56 %; 50 / 56 = 0.89 -> ceil(8.93) = 9
    pytest.param(ResourceCase(Fixture(10, JITTER_REQUESTS), (150,) * 10, 56, 9, 50),
                 id="TestReplicaCalcComputedToleranceAlgImplementation/scale down"),
    # target = 1 / (2 * 0.9) + .004 -> 55 %; 50 / 55 = 0.909 is within tolerance
    pytest.param(ResourceCase(Fixture(10, JITTER_REQUESTS), (150,) * 10, 55, 10, 50),
                 id="TestReplicaCalcComputedToleranceAlgImplementation/no scale"),
]  # fmt: skip


@pytest.mark.parametrize("case", RESOURCE_SCALE + RESOURCE_STANDALONE)
def test_resource_replicas(case: ResourceCase) -> None:
    metric = MetricSpec("cpu", SourceType.RESOURCE, TargetType.UTILIZATION, case.target, "cpu")
    ctx = case.fixture.context(case.tolerances)
    if case.error is not None:
        with pytest.raises(CalculationError, match=case.error or None):
            calculate(metric, _cpu_readings(case), ctx)
        return
    result = calculate(metric, _cpu_readings(case), ctx)
    assert (result.replicas, result.value) == (case.expected, case.utilization)


# ---------------------------------------------------------------------------------------
# Pods metrics (AverageValue) -> GetMetricReplicas / calcPlainMetricReplicas
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlainCase:
    fixture: Fixture
    levels: tuple[int, ...]  # milli, one per pod
    target: int  # targetUsage, milli
    expected: int
    usage: int  # expectedUsage, milli
    tolerances: Tolerances = DEFAULT_TOLERANCES


# upstream: the TestReplicaCalc* functions with metricType podMetric
PLAIN = [
    pytest.param(PlainCase(Fixture(3), (20000, 10000, 30000), 15000, 4, 20000),
                 id="TestReplicaCalcScaleUpCM"),
    pytest.param(PlainCase(Fixture(3, readiness=(T, T, F), start_times=(COOL, COOL, HOT)),
                           (50000, 10000, 30000), 15000, 6, 30000),
                 id="TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale"),
    pytest.param(PlainCase(Fixture(3, readiness=(F, T, F), start_times=(HOT, COOL, HOT)),
                           (50000, 15000, 30000), 15000, 7, 31666),
                 id="TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown"),
    pytest.param(PlainCase(Fixture(5), (12000,) * 5, 20000, 3, 12000),
                 id="TestReplicaCalcScaleDownCM"),
    pytest.param(PlainCase(Fixture(3), (20000, 21000, 21000), 20000, 3, 20666),
                 id="TestReplicaCalcToleranceCM"),
    pytest.param(PlainCase(Fixture(3), (20000, 21000, 21000), 20000, 4, 20666,
                           tolerances=Tolerances(TOLERANCE, 0.01)),
                 id="TestReplicaCalcConfigurableToleranceCM"),
    pytest.param(PlainCase(Fixture(5), (20000, 19000, 21000), 20000, 5, 20000),
                 id="TestPlainMetricReplicaCalcMissingMetricsNoChangeEq"),
    pytest.param(PlainCase(Fixture(2, phases=(RUNNING,) * 3), (10000, 10000), 17000, 2, 10000),
                 id="TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM"),
]  # fmt: skip


@pytest.mark.parametrize("case", PLAIN)
def test_plain_metric_replicas(case: PlainCase) -> None:
    metric = MetricSpec("qps", SourceType.PODS, TargetType.AVERAGE_VALUE, case.target / 1000)
    readings = PodValues(
        {
            f"test-pod-{i}": PodSample(level / 1000, GO_ZERO_TIME)
            for i, level in enumerate(case.levels)
        }
    )
    result = calculate(metric, readings, case.fixture.context(case.tolerances))
    assert (result.replicas, result.value) == (case.expected, case.usage / 1000)
    assert result.average == case.usage  # expectedUsage, in integer milli-units


# ---------------------------------------------------------------------------------------
# External metrics -> GetExternalMetricReplicas / GetExternalPerPodMetricReplicas
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExternalCase:
    fixture: Fixture
    levels: tuple[int, ...]  # milli, summed
    target: int  # targetUsage (Value) or perPodTargetUsage (AverageValue), milli
    per_pod: bool
    expected: int
    usage: int | None  # expectedUsage, milli; None: not compared
    tolerances: Tolerances = DEFAULT_TOLERANCES


# upstream: the TestReplicaCalc* / TestExternal* functions with an external metric
EXTERNAL = [
    pytest.param(ExternalCase(Fixture(3, readiness=(F, T, F)), (8600,), 4400, False, 2, 8600),
                 id="TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods"),
    pytest.param(ExternalCase(Fixture(3), (8600,), 2150, True, 4, 2867),
                 id="TestReplicaCalcScaleUpPerPodCMExternal"),
    pytest.param(ExternalCase(Fixture(5), (8600,), 14334, False, 3, 8600),
                 id="TestReplicaCalcScaleDownCMExternal"),
    pytest.param(ExternalCase(Fixture(5), (8600,), 2867, True, 3, 1720),
                 id="TestReplicaCalcScaleDownPerPodCMExternal"),
    pytest.param(ExternalCase(Fixture(3), (8600,), 8888, False, 3, 8600),
                 id="TestReplicaCalcToleranceCMExternal"),
    pytest.param(ExternalCase(Fixture(3), (8600,), 2900, True, 3, 2867),
                 id="TestReplicaCalcTolerancePerPodCMExternal"),
    pytest.param(ExternalCase(Fixture(3), (8900,), 8800, False, 4, 8900,
                              tolerances=Tolerances(TOLERANCE, 0.01)),
                 id="TestReplicaCalcConfigurableToleranceCMExternal"),
    pytest.param(ExternalCase(Fixture(3), (8600,), 2800, True, 4, 2867,
                              tolerances=Tolerances(TOLERANCE, 0.01)),
                 id="TestReplicaCalcConfigurableTolerancePerPodCMExternal"),
    # replica count beyond int32 is capped at MaxInt32; the usage is capped at MaxInt64
    # (float64(MaxInt64) is 2^63: the reported usage must not be that)
    pytest.param(ExternalCase(Fixture(1), (MAX_INT64,), 1, True, MAX_INT32, MAX_INT64),
                 id="TestExternalPerPodMetricReplicaOverflow"),
    pytest.param(ExternalCase(Fixture(1), (MAX_INT64,), MAX_INT64, True, 1, MAX_INT64),
                 id="TestExternalPerPodMetricUsageOverflow"),
    # upstream sums the two samples with saturation at MaxInt64; our caller sums them,
    # and the milli-value of the sum caps at MaxInt64 as a quantity's does
    pytest.param(ExternalCase(Fixture(3), (MAX_INT64 // 2 + 1, MAX_INT64 // 2 + 1), MAX_INT64,
                              False, 3, MAX_INT64),
                 id="TestReplicaCalcExternalMetricUsageOverflow"),
]  # fmt: skip


@pytest.mark.parametrize("case", EXTERNAL)
def test_external_metric_replicas(case: ExternalCase) -> None:
    target_type = TargetType.AVERAGE_VALUE if case.per_pod else TargetType.VALUE
    metric = MetricSpec("qps", SourceType.EXTERNAL, target_type, case.target / 1000)
    reading = TotalValue(sum(case.levels) / 1000)
    result = calculate(metric, reading, case.fixture.context(case.tolerances))
    assert result.replicas == case.expected
    if case.usage is not None:
        assert result.average == case.usage  # expectedUsage, exact in milli-units


# ---------------------------------------------------------------------------------------
# TestGroupPods -> group_pods()
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupCase:
    pods: tuple[Pod, ...]
    samples: dict[str, PodSample]
    cpu: bool
    ready_count: int
    unready: frozenset[str] = frozenset()
    missing: frozenset[str] = frozenset()
    ignored: frozenset[str] = frozenset()


SUCCEEDED = PodPhase.SUCCEEDED


def _pod(
    name: str,
    phase: PodPhase = SUCCEEDED,
    *,
    start: float | None = None,
    ready: bool | None = None,
    transition: float | None = None,
    deleting: bool = False,
) -> Pod:
    """A pod as the upstream fixture builds it; ``ready=None``: no Ready condition."""
    return Pod(name, phase, ready, transition, start, deleting)


VALUE_ONLY = PodSample(1, GO_ZERO_TIME, 0.0)  # metricsclient.PodMetric{Value: 1}

# upstream: TestGroupPods
GROUP_PODS = [
    pytest.param(GroupCase((), {}, True, 0), id="void"),
    pytest.param(GroupCase((_pod("bentham"),), {"bentham": PodSample(1, NOW, MINUTE)}, False, 1),
                 id="count in a ready pod - memory"),
    pytest.param(GroupCase((_pod("lucretius", start=NOW),), {"lucretius": VALUE_ONLY}, True, 0,
                           unready=frozenset({"lucretius"})),
                 id="unready a pod without ready condition - CPU"),
    pytest.param(GroupCase((_pod("bentham", start=NOW - MINUTE, ready=True,
                                 transition=NOW - 30),),
                           {"bentham": PodSample(1, NOW, 30.0)}, True, 1),
                 id="count in a ready pod with fresh metrics during initialization period - CPU"),
    pytest.param(GroupCase((_pod("bentham", start=NOW - MINUTE, ready=True,
                                 transition=NOW - 30),),
                           {"bentham": PodSample(1, NOW, 60.0)}, True, 0,
                           unready=frozenset({"bentham"})),
                 id="unready a ready pod without fresh metrics during initialization period - "
                    "CPU"),
    pytest.param(GroupCase((_pod("lucretius", start=NOW - 10 * MINUTE, ready=False,
                                 transition=NOW - 9 * MINUTE - 54),),
                           {"lucretius": VALUE_ONLY}, True, 0,
                           unready=frozenset({"lucretius"})),
                 id="unready an unready pod during initialization period - CPU"),
    pytest.param(GroupCase((_pod("bentham", start=NOW - 3 * MINUTE, ready=True,
                                 transition=NOW - 3 * MINUTE),),
                           {"bentham": PodSample(1, NOW - 2 * MINUTE, MINUTE)}, True, 1),
                 id="count in a ready pod without fresh metrics after initialization period - "
                    "CPU"),
    pytest.param(GroupCase((_pod("lucretius", start=NOW - 10 * MINUTE, ready=False,
                                 transition=NOW - 9 * MINUTE),),
                           {"lucretius": VALUE_ONLY}, True, 1),
                 id="count in an unready pod that was ready after initialization period - CPU"),
    pytest.param(GroupCase((_pod("lucretius", start=NOW - 10 * MINUTE, ready=False,
                                 transition=NOW - 9 * MINUTE - 50),),
                           {"lucretius": VALUE_ONLY}, True, 1),
                 id="unready pod that has never been ready after initialization period - CPU"),
    pytest.param(GroupCase((_pod("epicurus", start=NOW - 3 * MINUTE),), {}, True, 0,
                           missing=frozenset({"epicurus"})),
                 id="a missing pod"),
    pytest.param(GroupCase((_pod("lucretius", start=NOW),
                            _pod("niccolo", start=NOW - 3 * MINUTE, ready=True,
                                 transition=NOW - 3 * MINUTE),
                            _pod("epicurus", start=NOW - 3 * MINUTE)),
                           {"lucretius": VALUE_ONLY, "niccolo": VALUE_ONLY}, True, 1,
                           unready=frozenset({"lucretius"}), missing=frozenset({"epicurus"})),
                 id="several pods"),
    pytest.param(GroupCase((_pod("unscheduled", PodPhase.PENDING),), {}, True, 0,
                           unready=frozenset({"unscheduled"})),
                 id="pending pods are unreadied"),
    pytest.param(GroupCase((_pod("deleted", PodPhase.PENDING, deleting=True),),
                           {"deleted": VALUE_ONLY}, True, 0, ignored=frozenset({"deleted"})),
                 id="ignore pods with deletion timestamps"),
    pytest.param(GroupCase((_pod("failed", PodPhase.FAILED),), {"failed": VALUE_ONLY}, True, 0,
                           ignored=frozenset({"failed"})),
                 id="ignore pods in a failed state"),
]  # fmt: skip


@pytest.mark.parametrize("case", GROUP_PODS)
def test_group_pods(case: GroupCase) -> None:
    groups = group_pods(
        case.pods,
        case.samples,
        cpu=case.cpu,
        now=NOW,
        cpu_initialization_period=CPU_INITIALIZATION_PERIOD,
        initial_readiness_delay=INITIAL_READINESS_DELAY,
    )
    assert (groups.ready_count, groups.unready, groups.missing, groups.ignored) == (
        case.ready_count,
        case.unready,
        case.missing,
        case.ignored,
    )
