"""Upstream Kubernetes HPA test tables, translated to the policy engine's API.

Source: kubernetes/kubernetes ``pkg/controller/podautoscaler/horizontal_test.go``. Only
the cases (inputs and expected outputs) are carried over; each table names the upstream
test function it comes from. Upstream timestamps are relative to ``time.Now()``; here
they are relative to the fixed ``NOW``. An upstream event created "now - 60s" is a hair
older than 60 s when the code under test reads the clock, so it falls outside a 60 s
period; a timestamp exactly on the cutoff is outside in our engine too, which keeps the
boundary cases equivalent.

Whole-controller cases (``tc.runTest``) map to ``decide``. Upstream builds those HPAs
without a ``behavior`` block, which selects the legacy path (``normalizeDesiredReplicas``,
a scale-up cap of ``max(scaleUpLimitFactor * current, 4)`` with the factor forced to 8 in
the test's ``init()``, and ``stabilizeRecommendation``). Our engine always takes the
behavior path, so those cases are run with the Kubernetes default behavior
(``Behavior()``: +4 pods / +100 % per 15 s up, 300 s window and -100 % per 15 s down);
only cases whose expected result is the same on both paths are ported (checked by hand
for each one below).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from scaler.policy.behavior import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Behavior,
    PolicyType,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
)
from scaler.policy.decision import Reason
from scaler.policy.engine import Observation, PolicySpec, decide, record_scale
from scaler.policy.history import History, Recommendation, ScaleEvent
from scaler.policy.pods import Pod, PodPhase, PodSample
from scaler.policy.rate import change_in_period, limit_by_rate, scale_down_limit, scale_up_limit
from scaler.policy.readings import (
    MetricReading,
    MetricSpec,
    PodValues,
    SourceType,
    TargetType,
    TotalValue,
    Unavailable,
)
from scaler.policy.stabilization import stabilize

NOW = 1000.0
MINUTE = 60.0

# Upstream defaults in the test files (replica_calculator.go test constants).
TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 120.0  # defaultTestingCPUInitializationPeriod = 2 * time.Minute
INITIAL_READINESS_DELAY = 10.0  # defaultTestingDelayOfInitialReadinessStatus = 10 s
# Go's zero time.Time (year 1), as seconds on our clock: far before anything else.
GO_ZERO_TIME = NOW - 6.4e10
HOT = NOW  # hotCPUCreationTime(): time.Now()
COOL = NOW - 3 * MINUTE  # coolCPUCreationTime(): time.Now() - 3 min


def gen_rules(
    pods: int, pods_period: int, percent: int, percent_period: int, window: int
) -> ScalingRules:
    """``generateScalingRules``: Max select, a Pods then a Percent policy if non-zero."""
    policies = []
    if pods:
        policies.append(ScalingPolicy(PolicyType.PODS, pods, pods_period))
    if percent:
        policies.append(ScalingPolicy(PolicyType.PERCENT, percent, percent_period))
    return ScalingRules(window, SelectPolicy.MAX, tuple(policies), TOLERANCE)


def uniform_events(raw: list[int], period_seconds: int) -> tuple[ScaleEvent, ...]:
    """``generateEventsUniformDistribution``: one event in the middle of each segment.

    ``time.Duration(float64(...))`` truncates the boundary to whole seconds.
    """
    segment = period_seconds / len(raw)
    return tuple(
        ScaleEvent(change, NOW - int(period_seconds - segment * (idx + 1) + segment / 2))
        for idx, change in enumerate(raw)
    )


# ---------------------------------------------------------------------------------------
# TestNormalizeDesiredReplicasWithBehavior -> stabilize()
# ---------------------------------------------------------------------------------------


def recs(*pairs: tuple[int, float]) -> tuple[Recommendation, ...]:
    return tuple(Recommendation(replicas, NOW + offset) for replicas, offset in pairs)


# upstream: TestNormalizeDesiredReplicasWithBehavior
# (recommendations, current, desired, up window, down window, stabilized, stored or None)
NORMALIZE_WITH_BEHAVIOR = [
    pytest.param(
        (), 100, 5, 0, 0, 5, [5],
        id="empty recommendations for scaling down",
    ),
    pytest.param(
        recs((4, -2 * MINUTE), (5, -1 * MINUTE)), 100, 3, 0, 180, 5, [4, 5, 3],
        id="simple scale down stabilization",
    ),
    pytest.param(
        recs((4, -2 * MINUTE), (5, -1 * MINUTE)), 1, 7, 300, 0, 4, [4, 5, 7],
        id="simple scale up stabilization",
    ),
    pytest.param(
        recs((1, -2 * MINUTE), (2, -1 * MINUTE)), 100, 3, 300, 0, 3, [1, 2, 3],
        id="no scale down stabilization",
    ),
    pytest.param(
        recs((4, -2 * MINUTE), (5, -1 * MINUTE)), 1, 3, 0, 300, 3, [4, 5, 3],
        id="no scale up stabilization",
    ),
    pytest.param(
        recs((10, -10 * MINUTE), (9, -9 * MINUTE)), 100, 3, 0, 0, 3, [10, 3],
        id="no scale down stabilization, reuse recommendation element",
    ),
    pytest.param(
        recs((10, -10 * MINUTE), (9, -9 * MINUTE)), 1, 100, 0, 0, 100, [10, 100],
        id="no scale up stabilization, reuse recommendation element",
    ),
    pytest.param(
        recs((10, -10 * MINUTE), (4, -1 * MINUTE), (5, -2 * MINUTE), (9, -9 * MINUTE)),
        100, 3, 0, 180, 5, [10, 4, 5, 3],
        id="scale down stabilization, reuse one of obsolete recommendation element",
    ),
    pytest.param(
        recs((10, -100 * MINUTE), (6, -1 * MINUTE), (5, -2 * MINUTE), (9, -3 * MINUTE)),
        1, 100, 300, 0, 5, [100, 6, 5, 9],
        id="scale up stabilization, reuse one of obsolete recommendation element",
    ),
    pytest.param(
        recs((2, -100 * MINUTE), (3, -3 * MINUTE)), 2, 1, 300, 300, 2, None,
        id="scale up and down stabilization, do not scale up when prenormalized rec goes down",
    ),
    pytest.param(
        recs((2, -100 * MINUTE), (1, -3 * MINUTE)), 2, 3, 300, 300, 2, None,
        id="scale up and down stabilization, do not scale down when prenormalized rec goes up",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("recommendations", "current", "desired", "up_window", "down_window", "expected", "stored"),
    NORMALIZE_WITH_BEHAVIOR,
)
def test_normalize_desired_replicas_with_behavior(
    recommendations: tuple[Recommendation, ...],
    current: int,
    desired: int,
    up_window: int,
    down_window: int,
    expected: int,
    stored: list[int] | None,
) -> None:
    result = stabilize(
        recommendations,
        desired=desired,
        current=current,
        scale_up_window=up_window,
        scale_down_window=down_window,
        now=NOW,
    )
    assert result.replicas == expected
    if stored is not None:
        assert [r.replicas for r in result.recommendations] == stored


# upstream: TestNormalizeDesiredReplicas (legacy stabilizeRecommendation, 5 min window).
# The legacy function takes no current replica count and returns the highest
# recommendation in the window; the behavior path equals it when the current count is
# above every recommendation (it is then lowered to that maximum), so current = 100 here
# and the up window is 0 (legacy has no scale-up stabilization).
# (recommendations, desired, stabilized, log length)
NORMALIZE_LEGACY = [
    pytest.param((), 5, 5, 1, id="empty log"),
    pytest.param(recs((4, -2 * MINUTE), (5, -1 * MINUTE)), 3, 5, 3, id="stabilize"),
    pytest.param(recs((1, -2 * MINUTE), (2, -1 * MINUTE)), 3, 3, 3, id="no stabilize"),
    pytest.param(
        recs((10, -10 * MINUTE), (9, -9 * MINUTE)), 3, 3, 2,
        id="no stabilize - old recommendations",
    ),
    pytest.param(
        recs((10, -10 * MINUTE), (4, -1 * MINUTE), (5, -2 * MINUTE), (9, -9 * MINUTE)), 3, 5, 4,
        id="stabilize - old recommendations",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("recommendations", "desired", "expected", "length"), NORMALIZE_LEGACY)
def test_normalize_desired_replicas_legacy(
    recommendations: tuple[Recommendation, ...], desired: int, expected: int, length: int
) -> None:
    result = stabilize(
        recommendations,
        desired=desired,
        current=100,
        scale_up_window=0,
        scale_down_window=300,
        now=NOW,
    )
    assert result.replicas == expected
    assert len(result.recommendations) == length


# ---------------------------------------------------------------------------------------
# TestScalingWithRules -> limit_by_rate()
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateCase:
    current: int
    desired: int
    min_replicas: int
    max_replicas: int
    expected: int
    reason: str
    up_rules: ScalingRules | None = None  # None: GenerateHPAScaleUpRules(nil) defaults
    down_rules: ScalingRules | None = None
    up_events: tuple[ScaleEvent, ...] = ()
    down_events: tuple[ScaleEvent, ...] = ()


def _rate(case: RateCase) -> tuple[int, Reason, str]:
    behavior = Behavior(
        scale_up=case.up_rules or DEFAULT_SCALE_UP,
        scale_down=case.down_rules or DEFAULT_SCALE_DOWN,
    )
    return limit_by_rate(
        desired=case.desired,
        current=case.current,
        min_replicas=case.min_replicas,
        max_replicas=case.max_replicas,
        behavior=behavior,
        up_events=case.up_events,
        down_events=case.down_events,
        now=NOW,
    )


E159 = uniform_events([1, 5, 9], 120)  # events at -100 s, -60 s, -20 s
E8_12_9_11 = uniform_events([8, 12, 9, 11], 120)  # events at -105, -75, -45, -15 s
E10_10_10 = uniform_events([10, 10, 10], 120)

# upstream: TestScalingWithRules
SCALING_WITH_RULES = [
    pytest.param(RateCase(5, 7, 3, 8, 7, "DesiredWithinRange"),
                 id="prenormalized desired replicas within range"),
    pytest.param(RateCase(3, 1, 2, 8, 2, "TooFewReplicas"),
                 id="prenormalized desired replicas < minReplicas"),
    pytest.param(RateCase(1, 0, 0, 10, 0, "DesiredWithinRange"),
                 id="prenormalized desired replicas within range when minReplicas is 0"),
    pytest.param(RateCase(20, 1000, 1, 10, 10, "TooManyReplicas"),
                 id="maxReplicas is the limit because maxReplicas < scaleUpLimit"),
    pytest.param(RateCase(100, 1000, 100, 150, 150, "TooManyReplicas"),
                 id="desired replica count is more than the maximum replica count"),
    pytest.param(RateCase(3, 1000, 1, 2000, 4, "ScaleUpLimit", up_rules=gen_rules(0, 0, 1, 60, 0)),
                 id="scaleUpLimit is the limit because scaleUpLimit < maxReplicas "
                    "with user policies"),
    # Upstream marks this case testThis: true and returns before checking it; the
    # table's expectation is still the upstream one.
    pytest.param(RateCase(1000, 3, 3, 2000, 980, "ScaleDownLimit",
                          down_rules=gen_rules(20, 60, 0, 0, 0)),
                 id="scaleDownLimit is the limit because scaleDownLimit > minReplicas "
                    "with user defined policies"),
    pytest.param(RateCase(10, 50, 1, 1000, 20, "ScaleUpLimit"),
                 id="scaleUp with default behavior"),
    pytest.param(RateCase(10, 500, 1, 1000, 110, "ScaleUpLimit",
                          up_rules=gen_rules(100, 60, 100, 60, 0)),
                 id="scaleUp with pods policy larger than percent policy"),
    pytest.param(RateCase(10, 500, 1, 1000, 20, "ScaleUpLimit",
                          up_rules=gen_rules(2, 60, 100, 60, 0)),
                 id="scaleUp with percent policy larger than pods policy"),
    pytest.param(RateCase(10, 50, 1, 1000, 50, "DesiredWithinRange",
                          up_rules=gen_rules(100, 60, 0, 0, 0)),
                 id="scaleUp with spec MaxReplicas limitation with large pod policy"),
    pytest.param(RateCase(10, 50, 1, 1000, 50, "DesiredWithinRange",
                          up_rules=gen_rules(10000, 60, 0, 0, 0)),
                 id="scaleUp with spec MaxReplicas limitation with large percent policy"),
    pytest.param(RateCase(10, 50, 1, 1000, 40, "ScaleUpLimit",
                          up_rules=gen_rules(30, 60, 0, 0, 0)),
                 id="scaleUp with pod policy limitation"),
    pytest.param(RateCase(10, 50, 1, 1000, 30, "ScaleUpLimit",
                          up_rules=gen_rules(0, 0, 200, 60, 0)),
                 id="scaleUp with percent policy limitation"),
    pytest.param(RateCase(100, 2, 1, 1000, 80, "ScaleDownLimit",
                          down_rules=gen_rules(20, 60, 1, 60, 300)),
                 id="scaleDown with percent policy larger than pod policy"),
    pytest.param(RateCase(100, 2, 1, 1000, 98, "ScaleDownLimit",
                          down_rules=gen_rules(2, 60, 1, 60, 300)),
                 id="scaleDown with pod policy larger than percent policy"),
    pytest.param(RateCase(10, 0, 1, 1000, 1, "TooFewReplicas",
                          down_rules=gen_rules(100, 60, 0, 0, 300)),
                 id="scaleDown with spec MinReplicas=nil limitation with large pod policy"),
    pytest.param(RateCase(10, 0, 1, 1000, 1, "TooFewReplicas",
                          down_rules=gen_rules(100, 60, 0, 0, 300)),
                 id="scaleDown with spec MinReplicas limitation with large pod policy"),
    pytest.param(RateCase(10, 2, 5, 1000, 5, "TooFewReplicas",
                          down_rules=gen_rules(0, 0, 100, 60, 300)),
                 id="scaleDown with spec MinReplicas limitation with large percent policy"),
    pytest.param(RateCase(10, 2, 1, 1000, 5, "ScaleDownLimit",
                          down_rules=gen_rules(5, 60, 0, 0, 300)),
                 id="scaleDown with pod policy limitation"),
    pytest.param(RateCase(10, 5, 1, 1000, 5, "DesiredWithinRange",
                          down_rules=gen_rules(0, 0, 50, 60, 300)),
                 id="scaleDown with percent policy limitation"),
    pytest.param(RateCase(100, 500, 1, 200, 200, "TooManyReplicas",
                          up_rules=gen_rules(300, 60, 0, 0, 0), up_events=E159),
                 id="scaleUp with spec MaxReplicas limitation with large pod policy and events"),
    pytest.param(RateCase(100, 500, 1, 200, 200, "TooManyReplicas",
                          up_rules=gen_rules(0, 0, 10000, 60, 0), up_events=E159),
                 id="scaleUp with spec MaxReplicas limitation with large percent policy "
                    "and events"),
    pytest.param(RateCase(100, 500, 1, 1000, 100, "ScaleUpLimit",
                          up_rules=gen_rules(5, 120, 0, 0, 0), up_events=E159),
                 id="scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot "
                    "of recent scale up events"),
    pytest.param(RateCase(100, 500, 1, 1000, 235, "ScaleUpLimit",
                          up_rules=gen_rules(150, 120, 0, 0, 0), up_events=E159),
                 id="scaleUp with pod policy and previous scale up events"),
    pytest.param(RateCase(100, 500, 1, 1000, 255, "ScaleUpLimit",
                          up_rules=gen_rules(0, 0, 200, 120, 0), up_events=E159),
                 id="scaleUp with percent policy and previous scale up events"),
    pytest.param(RateCase(6, 24, 1, 1000, 16, "ScaleUpLimit",
                          up_rules=gen_rules(0, 0, 300, 300, 0),
                          up_events=uniform_events([4], 120),
                          down_events=uniform_events([2], 120)),
                 id="scaleUp with percent policy and previous scale up and down events"),
    pytest.param(RateCase(10, 5, 1, 1000, 5, "DesiredWithinRange", down_events=E159),
                 id="scaleDown with default policy and previous events"),
    pytest.param(RateCase(100, 0, 1, 1000, 1, "TooFewReplicas",
                          down_rules=gen_rules(115, 120, 0, 0, 300), down_events=E159),
                 id="scaleDown with spec MinReplicas=nil limitation with large pod policy and "
                    "previous events"),
    pytest.param(RateCase(100, 0, 5, 1000, 5, "TooFewReplicas",
                          down_rules=gen_rules(130, 120, 0, 0, 300), down_events=E159),
                 id="scaleDown with spec MinReplicas limitation with large pod policy and "
                    "previous events"),
    pytest.param(RateCase(100, 2, 5, 1000, 5, "TooFewReplicas",
                          down_rules=gen_rules(0, 0, 100, 120, 300), down_events=E159),
                 id="scaleDown with spec MinReplicas limitation with large percent policy and "
                    "previous events"),
    pytest.param(RateCase(100, 2, 1, 1000, 100, "ScaleDownLimit",
                          down_rules=gen_rules(5, 120, 0, 0, 300), down_events=E159),
                 id="scaleDown with pod policy limitation and previous events"),
    pytest.param(RateCase(100, 0, 1, 1000, 56, "ScaleDownLimit",
                          down_rules=gen_rules(0, 0, 50, 120, 300),
                          down_events=uniform_events([2, 4, 6], 120)),
                 id="scaleDown with percent policy limitation and previous events"),
    pytest.param(RateCase(10, 1, 1, 1000, 6, "ScaleDownLimit",
                          down_rules=gen_rules(0, 0, 50, 180, 0),
                          up_events=uniform_events([2], 120),
                          down_events=uniform_events([4], 120)),
                 id="scaleDown with percent policy and previous scale up and down events"),
    pytest.param(RateCase(100, 0, 1, 1000, 100, "ScaleDownLimit",
                          down_rules=gen_rules(0, 0, 10, 120, 300), down_events=E10_10_10),
                 id="scaleDown with previous events preventing further scale down"),
    pytest.param(RateCase(10, 5, 1, 1000, 5, "DesiredWithinRange",
                          down_rules=gen_rules(0, 0, 1000, 120, 300), down_events=E10_10_10),
                 id="scaleDown with with previous events still allowing more scale down"),
    pytest.param(RateCase(100, 200, 1, 1000, 200, "DesiredWithinRange",
                          up_rules=gen_rules(1000, 60, 0, 0, 0), up_events=E8_12_9_11),
                 id="check 'outdated' flag for events for one behavior for up"),
    pytest.param(RateCase(100, 200, 1, 1000, 200, "DesiredWithinRange",
                          up_rules=gen_rules(1000, 120, 100, 60, 0), up_events=E8_12_9_11),
                 id="check that events were not marked 'outdated' for two different policies in "
                    "the behavior for up"),
    pytest.param(RateCase(100, 200, 1, 1000, 200, "DesiredWithinRange",
                          up_rules=gen_rules(1000, 30, 100, 60, 0), up_events=E8_12_9_11),
                 id="check that events were marked 'outdated' for two different policies in the "
                    "behavior for up"),
    pytest.param(RateCase(100, 5, 1, 1000, 5, "DesiredWithinRange",
                          down_rules=gen_rules(1000, 60, 0, 0, 300), down_events=E8_12_9_11),
                 id="check 'outdated' flag for events for one behavior for down"),
    pytest.param(RateCase(100, 5, 1, 1000, 5, "DesiredWithinRange",
                          down_rules=gen_rules(1000, 120, 100, 60, 300), down_events=E8_12_9_11),
                 id="check that events were not marked 'outdated' for two different policies in "
                    "the behavior for down"),
    pytest.param(RateCase(100, 5, 1, 1000, 5, "DesiredWithinRange",
                          down_rules=gen_rules(1000, 30, 100, 60, 300), down_events=E8_12_9_11),
                 id="check that events were marked 'outdated' for two different policies in the "
                    "behavior for down"),
]  # fmt: skip


@pytest.mark.parametrize("case", SCALING_WITH_RULES)
def test_scaling_with_rules(case: RateCase) -> None:
    replicas, reason, _ = _rate(case)
    assert (replicas, str(reason)) == (case.expected, case.reason)


# upstream: TestConvertDesiredReplicasWithRules (legacy convertDesiredReplicasWithRules).
# Run through the behavior path with default rules. The fifth upstream case,
# "scaleUpLimit is the limit because scaleUpLimit < maxReplicas", expects the legacy
# calculateScaleUpLimit(3) = max(8 * 3, 4) = 24 and is not ported: it depends on the
# legacy cap (the behavior path's default cap is max(3 + 4, 2 * 3) = 7).
CONVERT_WITH_RULES = [
    pytest.param(RateCase(5, 7, 3, 8, 7, "DesiredWithinRange"),
                 id="prenormalized desired replicas within range"),
    pytest.param(RateCase(3, 1, 2, 8, 2, "TooFewReplicas"),
                 id="prenormalized desired replicas < minReplicas"),
    pytest.param(RateCase(1, 0, 0, 10, 0, "DesiredWithinRange"),
                 id="prenormalized desired zeroed replicas within range"),
    pytest.param(RateCase(20, 1000, 1, 10, 10, "TooManyReplicas"),
                 id="maxReplicas is the limit because maxReplicas < scaleUpLimit"),
]  # fmt: skip


@pytest.mark.parametrize("case", CONVERT_WITH_RULES)
def test_convert_desired_replicas_with_rules(case: RateCase) -> None:
    replicas, reason, _ = _rate(case)
    assert (replicas, str(reason)) == (case.expected, case.reason)


# ---------------------------------------------------------------------------------------
# TestCalculateScaleUpLimitWithScalingRules / TestCalculateScaleDownLimitWithBehaviors
# ---------------------------------------------------------------------------------------

MIN_RULES = ScalingRules(
    300,
    SelectPolicy.MIN,
    (ScalingPolicy(PolicyType.PODS, 2, 60), ScalingPolicy(PolicyType.PERCENT, 50, 60)),
    TOLERANCE,
)


def test_calculate_scale_up_limit_with_scaling_rules() -> None:
    # upstream: TestCalculateScaleUpLimitWithScalingRules
    assert scale_up_limit(1, (), (), MIN_RULES, NOW) == 2


def test_calculate_scale_down_limit_with_behaviors() -> None:
    # upstream: TestCalculateScaleDownLimitWithBehaviors
    assert scale_down_limit(5, (), (), MIN_RULES, NOW) == 3


# ---------------------------------------------------------------------------------------
# TestStoreScaleEvents -> record_scale()
# ---------------------------------------------------------------------------------------


def events(*triples: tuple[int, float, bool]) -> tuple[ScaleEvent, ...]:
    return tuple(ScaleEvent(change, NOW + offset, outdated) for change, offset, outdated in triples)


# upstream: TestStoreScaleEvents
# (previous events, rules, expected change in the last 60 s, expected (change, outdated))
# Not ported: "empty entries with default behavior" and "one outdated entry to be kept
# untouched without behavior" pass a nil behavior, for which upstream stores no event at
# all; our engine always has a (defaulted) behavior, like an API-defaulted HPA.
STORE_SCALE_EVENTS = [
    pytest.param(
        (), gen_rules(10, 60, 100, 60, 0), 0, [(5, False)],
        id="empty entries with two-policy-behavior",
    ),
    pytest.param(
        events((7, -61, False)), gen_rules(10, 60, 100, 60, 0), 0, [(5, False)],
        id="one outdated entry to be replaced with behavior",
    ),
    pytest.param(
        events((7, -58, False)), gen_rules(10, 60, 100, 60, 0), 7, [(7, False), (5, False)],
        id="one actual entry to be not touched with behavior",
    ),
    pytest.param(
        events((7, -61, False), (6, -59, False)), gen_rules(10, 60, 0, 0, 0), 6,
        [(5, False), (6, False)],
        id="two entries, one of them to be replaced",
    ),
    pytest.param(
        events((8, -29, False), (6, -59, False), (7, -61, False), (9, -61, False)),
        gen_rules(10, 60, 100, 30, 0), 14,
        [(8, False), (6, False), (7, True), (5, False)],
        id="replace one entry, use policies with different periods",
    ),
    pytest.param(
        events((7, -58, False), (6, -59, False)), gen_rules(10, 120, 100, 30, 0), 13,
        [(7, False), (6, False), (5, False)],
        id="two entries, both actual",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("previous", "rules", "change", "expected"), STORE_SCALE_EVENTS)
def test_store_scale_events(
    previous: tuple[ScaleEvent, ...],
    rules: ScalingRules,
    change: int,
    expected: list[tuple[int, bool]],
) -> None:
    replica_change = 5
    # scale up: only ScaleUp is set in upstream's behaviorUp
    assert change_in_period(previous, 60, NOW) == change
    up = record_scale(
        History(recommendations=(), scale_up_events=previous),
        Behavior(scale_up=rules),
        10,
        10 + replica_change,
        NOW,
    )
    assert [(e.replica_change, e.outdated) for e in up.scale_up_events] == expected
    # scale down: only ScaleDown is set in upstream's behaviorDown
    down = record_scale(
        History(recommendations=(), scale_down_events=previous),
        Behavior(scale_down=rules),
        10,
        10 - replica_change,
        NOW,
    )
    assert [(e.replica_change, e.outdated) for e in down.scale_down_events] == expected


# ---------------------------------------------------------------------------------------
# Whole-controller cases (tc.runTest) -> decide()
# ---------------------------------------------------------------------------------------

CPU = "cpu"
QPS = "qps"
BAD = "cheddar"  # upstream's metric of invalid type "CheddarCheese": never computable


@dataclass(frozen=True)
class ControllerCase:
    """Fields named as upstream's ``testCase``; milli-values as upstream uses them."""

    min_replicas: int
    max_replicas: int
    spec_replicas: int
    status_replicas: int
    expected: int
    cpu_target: int = 0  # CPUTarget: a CPU Utilization metric, listed first
    metrics: tuple[MetricSpec, ...] = ()  # metricsTarget
    levels: tuple[int, ...] = ()  # reportedLevels (milli)
    requests: tuple[int, ...] | None = None  # reportedCPURequests (milli); None: "1.0" each
    readiness: tuple[bool, ...] | None = None  # reportedPodReadiness
    start_times: tuple[float, ...] | None = None  # reportedPodStartTime
    phases: tuple[PodPhase, ...] | None = None  # reportedPodPhase
    deleting: tuple[bool, ...] | None = None  # reportedPodDeletionTimestamp
    recommendations: tuple[Recommendation, ...] | None = None  # None: never set (nil)
    up_rules: ScalingRules | None = None
    down_rules: ScalingRules | None = None
    failing: frozenset[str] = field(default_factory=frozenset)  # metric clients erroring
    cpu_current: int | None = None  # verifyCPUCurrent / CPUCurrent
    reason: Reason | None = None  # an upstream condition reason (same string as ours)


def _controller_pods(case: ControllerCase) -> tuple[Pod, ...]:
    """``prepareTestClient``'s pod reactor: the Ready condition's lastTransitionTime is
    the pod's start time; each pod has two containers requesting half the CPU each."""
    count = len(case.requests) if case.requests is not None else case.status_replicas
    pods = []
    for i in range(count):
        start = case.start_times[i] if case.start_times is not None else GO_ZERO_TIME
        request = case.requests[i] if case.requests is not None else 1000
        pods.append(
            Pod(
                name=f"test-pod-{i}",
                phase=case.phases[i] if case.phases is not None else PodPhase.RUNNING,
                ready=case.readiness[i] if case.readiness is not None else True,
                ready_transition_time=start,
                start_time=start,
                deleting=case.deleting[i] if case.deleting is not None else False,
                request=2 * (request // 2) / 1000,
            )
        )
    return tuple(pods)


def _controller_readings(
    case: ControllerCase, metrics: tuple[MetricSpec, ...]
) -> dict[str, MetricReading]:
    readings: dict[str, MetricReading] = {}
    for metric in metrics:
        if metric.name in case.failing or metric.name == BAD:
            readings[metric.name] = Unavailable("something went wrong")
        elif metric.source is SourceType.RESOURCE:
            # the metrics API reports each of the two containers at level / 2
            readings[metric.name] = PodValues(
                {
                    f"test-pod-{i}": PodSample(2 * (level // 2) / 1000, NOW, MINUTE)
                    for i, level in enumerate(case.levels)
                }
            )
        elif metric.source is SourceType.PODS:
            readings[metric.name] = PodValues(
                {
                    f"test-pod-{i}": PodSample(level / 1000, NOW)
                    for i, level in enumerate(case.levels)
                }
            )
        else:
            readings[metric.name] = TotalValue(sum(case.levels) / 1000)
    return readings


def _run_controller(case: ControllerCase) -> tuple[int, Reason, float | None]:
    metrics = case.metrics
    if case.cpu_target:
        cpu = MetricSpec(CPU, SourceType.RESOURCE, TargetType.UTILIZATION, case.cpu_target)
        metrics = (cpu, *metrics)
    if not metrics:
        # upstream defaults a CPU metric; these cases never reach the metrics
        metrics = (MetricSpec(CPU, SourceType.RESOURCE, TargetType.UTILIZATION, 80),)
    spec = PolicySpec(
        min_replicas=case.min_replicas,
        max_replicas=case.max_replicas,
        metrics=metrics,
        behavior=Behavior(
            scale_up=case.up_rules or DEFAULT_SCALE_UP,
            scale_down=case.down_rules or DEFAULT_SCALE_DOWN,
        ),
        cpu_initialization_period=CPU_INITIALIZATION_PERIOD,
        initial_readiness_delay=INITIAL_READINESS_DELAY,
    )
    observation = Observation(
        spec_replicas=case.spec_replicas,
        status_replicas=case.status_replicas,
        pods=_controller_pods(case),
        readings=_controller_readings(case, metrics),
    )
    decision, _ = decide(spec, observation, History(recommendations=case.recommendations), NOW)
    cpu_value = next((p.value for p in decision.proposals if p.name == CPU), None)
    return decision.replicas, decision.reason, cpu_value


def pods_metric(target: float) -> MetricSpec:
    return MetricSpec(QPS, SourceType.PODS, TargetType.AVERAGE_VALUE, target)


def external_value(target: float) -> MetricSpec:
    return MetricSpec(QPS, SourceType.EXTERNAL, TargetType.VALUE, target)


def external_average(target: float) -> MetricSpec:
    return MetricSpec(QPS, SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, target)


INVALID = MetricSpec(BAD, SourceType.PODS, TargetType.AVERAGE_VALUE, 1.0)
T, F = True, False
R1 = (1000, 1000, 1000)
R5 = (1000,) * 5
R7 = (1000,) * 7
R_9_10_11 = (900, 1000, 1100)
# TestComputedToleranceAlgImplementation: perPodRequested = 300m with jitter
JITTER_REQUESTS = (400, 200, 310, 290, 302, 298, 301, 299, 300, 300)

# Upstream tests from horizontal_test.go. Container-resource and Object metric cases are
# not ported (no such metric sources in our engine); nor are the selector, scale-client
# and event-recording cases (no I/O in the policy). TestScaleUpDeployment /
# TestScaleUpReplicaSet repeat TestScaleUp with another target kind.
CONTROLLER_CASES = [
    pytest.param(ControllerCase(2, 6, 3, 3, 5, cpu_target=30, levels=(300, 500, 700), requests=R1,
                                cpu_current=50),
                 id="TestScaleUp"),
    pytest.param(ControllerCase(2, 6, 3, 3, 4, cpu_target=30, levels=(300, 500, 700), requests=R1,
                                readiness=(F, T, T), cpu_current=60),
                 id="TestScaleUpUnreadyLessScale"),
    pytest.param(ControllerCase(2, 6, 3, 3, 4, cpu_target=30, levels=(300, 500, 700), requests=R1,
                                start_times=(HOT, COOL, COOL), cpu_current=60),
                 id="TestScaleUpHotCpuLessScale"),
    pytest.param(ControllerCase(2, 6, 3, 3, 3, cpu_target=30, levels=(400, 500, 700), requests=R1,
                                readiness=(T, F, F), cpu_current=40),
                 id="TestScaleUpUnreadyNoScale"),
    pytest.param(ControllerCase(2, 6, 3, 3, 3, cpu_target=30, levels=(400, 500, 700), requests=R1,
                                readiness=(T, F, F), start_times=(COOL, HOT, HOT),
                                cpu_current=40),
                 id="TestScaleUpHotCpuNoScale"),
    pytest.param(ControllerCase(2, 6, 2, 2, 4, cpu_target=30, levels=(500, 700),
                                requests=(1000,) * 4, readiness=(T, T, F, F),
                                phases=(PodPhase.RUNNING, PodPhase.RUNNING, PodPhase.FAILED,
                                        PodPhase.FAILED),
                                cpu_current=60),
                 id="TestScaleUpIgnoresFailedPods"),
    pytest.param(ControllerCase(2, 6, 2, 2, 4, cpu_target=30, levels=(500, 700),
                                requests=(1000,) * 4, readiness=(T, T, F, F),
                                deleting=(F, F, T, T), cpu_current=60),
                 id="TestScaleUpIgnoresDeletionPods"),
    pytest.param(ControllerCase(2, 6, 3, 3, 4, metrics=(pods_metric(15.0),),
                                levels=(20000, 10000, 30000), requests=R1),
                 id="TestScaleUpCM"),
    pytest.param(ControllerCase(2, 6, 3, 3, 6, metrics=(pods_metric(15.0),),
                                levels=(50000, 10000, 30000), requests=R1,
                                readiness=(T, T, F), start_times=(COOL, COOL, HOT)),
                 id="TestScaleUpCMUnreadyAndHotCpuNoLessScale"),
    pytest.param(ControllerCase(2, 6, 3, 3, 6, metrics=(pods_metric(15.0),),
                                levels=(50000, 15000, 30000), requests=R1,
                                readiness=(F, T, F), start_times=(HOT, COOL, HOT),
                                reason=Reason.TOO_MANY_REPLICAS),
                 id="TestScaleUpCMUnreadyandCpuHot"),
    pytest.param(ControllerCase(2, 6, 3, 3, 6, metrics=(pods_metric(15.0),),
                                levels=(50000, 15000, 30000), requests=R1,
                                start_times=(HOT, COOL, HOT), reason=Reason.TOO_MANY_REPLICAS),
                 id="TestScaleUpHotCpuNoScaleWouldScaleDown"),
    pytest.param(ControllerCase(2, 6, 3, 3, 4, metrics=(external_value(6.666),), levels=(8600,)),
                 id="TestScaleUpCMExternal"),
    pytest.param(ControllerCase(2, 6, 3, 3, 4, metrics=(external_average(2.222),),
                                levels=(8600,)),
                 id="TestScaleUpPerPodCMExternal"),
    pytest.param(ControllerCase(2, 6, 5, 5, 3, cpu_target=50, levels=(100, 300, 500, 250, 250),
                                requests=R5, recommendations=(), cpu_current=28),
                 id="TestScaleDown"),
    pytest.param(ControllerCase(2, 6, 5, 5, 3, cpu_target=50, levels=(100, 300, 500, 250, 250),
                                requests=R5, recommendations=(), cpu_current=28,
                                up_rules=gen_rules(0, 0, 100, 15, 30)),
                 id="TestScaleDownWithScalingRules"),
    pytest.param(ControllerCase(2, 6, 3, 3, 4, cpu_target=30, metrics=(INVALID,),
                                levels=(300, 400, 500), requests=R1, cpu_current=40),
                 id="TestScaleUpOneMetricInvalid"),
    pytest.param(ControllerCase(0, 6, 0, 0, 4, cpu_target=30, metrics=(INVALID,),
                                levels=(300, 400, 500), requests=R1, recommendations=(),
                                cpu_current=40),
                 id="TestScaleUpFromZeroOneMetricInvalid"),
    pytest.param(ControllerCase(2, 6, 3, 3, 3, metrics=(INVALID,), requests=R1),
                 id="TestScaleUpBothMetricsEmpty"),
    pytest.param(ControllerCase(2, 6, 5, 5, 5, cpu_target=50, levels=(100, 300, 500, 250, 250),
                                requests=R5, recommendations=None, cpu_current=28,
                                reason=Reason.SCALE_DOWN_STABILIZED),
                 id="TestScaleDownStabilizeInitialSize"),
    pytest.param(ControllerCase(2, 6, 5, 5, 3, metrics=(pods_metric(20.0),),
                                levels=(12000,) * 5, requests=R5, recommendations=()),
                 id="TestScaleDownCM"),
    pytest.param(ControllerCase(2, 6, 5, 5, 3, metrics=(external_value(14.4),), levels=(8600,),
                                recommendations=()),
                 id="TestScaleDownCMExternal"),
    pytest.param(ControllerCase(0, 6, 5, 5, 0, metrics=(external_value(14.4),), levels=(0,),
                                recommendations=()),
                 id="TestScaleDownToZeroCMExternal"),
    pytest.param(ControllerCase(2, 6, 5, 5, 3, metrics=(external_average(3.0),), levels=(8600,),
                                recommendations=()),
                 id="TestScaleDownPerPodCMExternal"),
    pytest.param(ControllerCase(2, 6, 5, 5, 2, cpu_target=50, levels=(100, 300, 500, 250, 250),
                                requests=R5, readiness=(T, T, T, F, F), recommendations=(),
                                cpu_current=30),
                 id="TestScaleDownIncludeUnreadyPods"),
    pytest.param(ControllerCase(2, 6, 5, 5, 2, cpu_target=50, levels=(100, 300, 500, 250, 250),
                                requests=R5, start_times=(COOL, COOL, COOL, HOT, HOT),
                                recommendations=(), cpu_current=30),
                 id="TestScaleDownIgnoreHotCpuPods"),
    pytest.param(ControllerCase(2, 6, 5, 5, 3, cpu_target=50, levels=(100, 300, 500, 250, 250),
                                requests=R7, readiness=(T, T, T, T, T, F, F),
                                phases=(PodPhase.RUNNING,) * 5 + (PodPhase.FAILED,) * 2,
                                recommendations=(), cpu_current=28),
                 id="TestScaleDownIgnoresFailedPods"),
    pytest.param(ControllerCase(2, 6, 5, 5, 3, cpu_target=50, levels=(100, 300, 500, 250, 250),
                                requests=R7, readiness=(T, T, T, T, T, F, F),
                                deleting=(F, F, F, F, F, T, T), recommendations=(),
                                cpu_current=28),
                 id="TestScaleDownIgnoresDeletionPods"),
    pytest.param(ControllerCase(1, 5, 3, 3, 3, cpu_target=100, levels=(1010, 1030, 1020),
                                requests=R_9_10_11),
                 id="TestTolerance"),
    pytest.param(ControllerCase(1, 5, 3, 3, 3, metrics=(pods_metric(20.0),),
                                levels=(20000, 20001, 21000), requests=R_9_10_11),
                 id="TestToleranceCM"),
    pytest.param(ControllerCase(2, 6, 4, 4, 4, metrics=(external_value(8.666),), levels=(8600,)),
                 id="TestToleranceCMExternal"),
    pytest.param(ControllerCase(2, 6, 4, 4, 4, metrics=(external_average(2.2),), levels=(8600,)),
                 id="TestTolerancePerPodCMExternal"),
    pytest.param(ControllerCase(2, 5, 3, 3, 2, cpu_target=90, levels=(10, 95, 10),
                                requests=R_9_10_11, recommendations=(),
                                reason=Reason.TOO_FEW_REPLICAS),
                 id="TestMinReplicas"),
    pytest.param(ControllerCase(0, 5, 3, 3, 0, cpu_target=90, levels=(0, 0, 0),
                                requests=R_9_10_11, recommendations=(),
                                reason=Reason.DESIRED_WITHIN_RANGE),
                 id="TestZeroMinReplicasDesiredZero"),
    pytest.param(ControllerCase(2, 5, 3, 3, 2, cpu_target=90, levels=(0, 0, 0),
                                requests=R_9_10_11, recommendations=(),
                                reason=Reason.TOO_FEW_REPLICAS),
                 id="TestMinReplicasDesiredZero"),
    pytest.param(ControllerCase(3, 5, 0, 0, 0, cpu_target=90, requests=(),
                                reason=Reason.SCALING_DISABLED),
                 id="TestZeroReplicas"),
    pytest.param(ControllerCase(3, 5, 2, 2, 3, cpu_target=90, requests=()),
                 id="TestTooFewReplicas"),
    pytest.param(ControllerCase(3, 5, 10, 10, 5, cpu_target=90, requests=()),
                 id="TestTooManyReplicas"),
    pytest.param(ControllerCase(2, 5, 3, 3, 5, cpu_target=90, levels=(8000, 9500, 1000),
                                requests=R_9_10_11, reason=Reason.TOO_MANY_REPLICAS),
                 id="TestMaxReplicas"),
    pytest.param(ControllerCase(2, 6, 4, 4, 6, cpu_target=100,
                                levels=(4000, 9500, 3000, 7000, 3200, 2000), requests=(1000,) * 4,
                                reason=Reason.TOO_MANY_REPLICAS),
                 id="TestSuperfluousMetrics"),
    pytest.param(ControllerCase(2, 6, 4, 4, 3, cpu_target=100, levels=(400, 95),
                                requests=(1000,) * 4, recommendations=()),
                 id="TestMissingMetrics"),
    pytest.param(ControllerCase(2, 6, 4, 4, 4, cpu_target=100, levels=(), requests=(1000,) * 4),
                 id="TestEmptyMetrics"),
    # reportedCPURequests is an empty non-nil slice, so the pod lister returns no pods
    pytest.param(ControllerCase(1, 5, 1, 1, 1, cpu_target=100, levels=(200,), requests=()),
                 id="TestEmptyCPURequest"),
    pytest.param(ControllerCase(1, 5, 1, 1, 2, cpu_target=50, levels=(200,), requests=(200,)),
                 id="TestEventCreated"),
    pytest.param(ControllerCase(1, 5, 2, 2, 2, cpu_target=50, levels=(200, 200),
                                requests=(400, 400)),
                 id="TestEventNotCreated"),
    pytest.param(ControllerCase(1, 5, 4, 4, 2, cpu_target=50, levels=(200,), requests=(200,),
                                recommendations=()),
                 id="TestMissingReports"),
    pytest.param(ControllerCase(1, 100, 3, 3, 24, cpu_target=10, levels=(100, 200, 300),
                                requests=(100, 100, 100), up_rules=gen_rules(0, 0, 700, 60, 0),
                                reason=Reason.SCALE_UP_LIMIT),
                 id="TestUpscaleCap"),
    pytest.param(ControllerCase(1, 20, 3, 3, 20, cpu_target=10, levels=(100, 200, 300),
                                requests=(100, 100, 100), up_rules=gen_rules(0, 0, 700, 60, 0),
                                reason=Reason.TOO_MANY_REPLICAS),
                 id="TestUpscaleCapGreaterThanMaxReplicas"),
    pytest.param(ControllerCase(1, 8, 4, 5, 4, cpu_target=50, levels=(500,) * 5, requests=R5),
                 id="TestMoreReplicasThanSpecNoScale"),
    pytest.param(ControllerCase(1, 100, 3, 3, 3, cpu_target=10, levels=(100, 200, 300),
                                requests=(100, 100, 100), failing=frozenset({CPU})),
                 id="TestConditionFailedGetMetrics/FailedGetResourceMetric"),
    pytest.param(ControllerCase(1, 100, 3, 3, 3, metrics=(pods_metric(15.0),),
                                levels=(100, 200, 300), requests=(100, 100, 100),
                                failing=frozenset({QPS})),
                 id="TestConditionFailedGetMetrics/FailedGetPodsMetric"),
    pytest.param(ControllerCase(1, 100, 3, 3, 3, metrics=(external_value(0.3),),
                                levels=(100, 200, 300), requests=(100, 100, 100),
                                failing=frozenset({QPS})),
                 id="TestConditionFailedGetMetrics/FailedGetExternalMetric"),
    pytest.param(ControllerCase(1, 5, 3, 3, 4, metrics=(pods_metric(15.0),),
                                levels=(20000, 10000, 30000), requests=R1),
                 id="TestNoBackoffUpscaleCM"),
    pytest.param(ControllerCase(1, 5, 3, 3, 5, cpu_target=10, metrics=(pods_metric(15.0),),
                                levels=(20000, 10000, 30000), requests=R1,
                                reason=Reason.TOO_MANY_REPLICAS),
                 id="TestNoBackoffUpscaleCMNoBackoffCpu"),
    pytest.param(ControllerCase(1, 5, 4, 4, 4, cpu_target=100, levels=(50, 50, 50),
                                requests=(100, 100, 100),
                                recommendations=recs((10, -10 * MINUTE), (4, -1 * MINUTE)),
                                reason=Reason.SCALE_DOWN_STABILIZED),
                 id="TestStabilizeDownscale"),
    # target = 1 / (2 * 0.9) + .01 -> 56 %; 50 % / 56 % = 0.89 -> ceil(8.93) = 9
    pytest.param(ControllerCase(0, 1000, 10, 10, 9, cpu_target=56, levels=(150,) * 10,
                                requests=JITTER_REQUESTS, recommendations=()),
                 id="TestComputedToleranceAlgImplementation/scale down"),
    # target = 1 / (2 * 0.9) + .004 -> 55 %; 50 % / 55 % = 0.909 is within tolerance
    pytest.param(ControllerCase(0, 1000, 10, 10, 10, cpu_target=55, levels=(150,) * 10,
                                requests=JITTER_REQUESTS, recommendations=()),
                 id="TestComputedToleranceAlgImplementation/no scale"),
    pytest.param(ControllerCase(2, 6, 1, 1, 2, levels=(0, 0, 0, 0), requests=(1000,) * 4),
                 id="TestScaleUpRCImmediately"),
    pytest.param(ControllerCase(2, 5, 6, 6, 5, cpu_target=50, levels=(8000, 9500, 1000),
                                requests=R_9_10_11),
                 id="TestScaleDownRCImmediately"),
    # the HPA is replaced by one with an 80 % target (see the upstream TODO)
    pytest.param(ControllerCase(2, 6, 2, 2, 2, cpu_target=80, levels=(400, 500, 700),
                                requests=R1, start_times=(COOL, HOT, HOT), recommendations=(),
                                cpu_current=40, reason=Reason.TOO_FEW_REPLICAS),
                 id="TestAvoidUnnecessaryUpdates"),
    pytest.param(ControllerCase(2, 6, 3, 3, 4, cpu_target=30, metrics=(external_value(0.1),),
                                levels=(300, 400, 500), requests=R1, failing=frozenset({QPS}),
                                cpu_current=40),
                 id="TestScaleUpOneMetricEmpty"),
    pytest.param(ControllerCase(2, 6, 5, 5, 5, cpu_target=50, metrics=(INVALID,),
                                levels=(100, 300, 500, 250, 250), requests=R5,
                                recommendations=()),
                 id="TestNoScaleDownOneMetricInvalid"),
    pytest.param(ControllerCase(2, 6, 5, 5, 5, cpu_target=50, metrics=(external_value(1.0),),
                                levels=(100, 300, 500, 250, 250), requests=R5,
                                recommendations=(), failing=frozenset({QPS})),
                 id="TestNoScaleDownOneMetricEmpty"),
]  # fmt: skip


@pytest.mark.parametrize("case", CONTROLLER_CASES)
def test_controller_cases(case: ControllerCase) -> None:
    replicas, reason, cpu_value = _run_controller(case)
    assert replicas == case.expected
    if case.cpu_current is not None:
        assert cpu_value == case.cpu_current
    if case.reason is not None:
        assert reason == case.reason
