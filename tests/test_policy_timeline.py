"""The policy engine along timelines, with time as a plain number (seconds).

Each step reads: at t, the metric says X, so the engine answers N replicas, because R.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from scaler.policy import (
    MISSION_BEHAVIOR,
    Behavior,
    History,
    MetricSpec,
    Observation,
    PolicySpec,
    PolicyType,
    Reason,
    Recommendation,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    SourceType,
    TargetType,
    TotalValue,
    Unavailable,
    decide,
)
from tests.support.timeline import Timeline

QUEUE = MetricSpec("queue", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 1.0)
CPU_TOTAL = MetricSpec("cpu", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 0.8)
MISSION = PolicySpec(min_replicas=2, max_replicas=10, metrics=(QUEUE,), behavior=MISSION_BEHAVIOR)


def test_mission_policy_burst_then_quiet() -> None:
    line = Timeline(MISSION, replicas=2)
    # t=0: 8 requests for 2 replicas want 8, but +100 % per 15 s allows 4.
    d = line.at(0, load=8)
    assert (d.recommendation, d.replicas, d.reason) == (8, 4, Reason.SCALE_UP_LIMIT)
    # t=1: the +2 of t=0 is inside the 15 s period: still 4.
    d = line.at(1, load=8)
    assert (d.replicas, d.reason) == (4, Reason.SCALE_UP_LIMIT)
    # t=15: the t=0 event is exactly one period old, so it no longer counts: 8.
    d = line.at(15, load=8)
    assert (d.replicas, d.reason) == (8, Reason.DESIRED_WITHIN_RANGE)
    # t=16: 8 requests on 8 replicas is the target: no change.
    d = line.at(16, load=8)
    assert (d.replicas, d.reason) == (8, Reason.WITHIN_TOLERANCE)
    # t=20: the crowd leaves; the 60 s window still holds the 8s of t=0..16.
    d = line.at(20, load=0)
    assert (d.recommendation, d.replicas, d.reason) == (0, 8, Reason.SCALE_DOWN_STABILIZED)
    # t=75: the recommendation of t=16 is still inside (15, 75]: still 8.
    d = line.at(75, load=0)
    assert (d.replicas, d.reason) == (8, Reason.SCALE_DOWN_STABILIZED)
    # t=76: the window holds only zeros; -50 % per 60 s allows 8 -> 4.
    d = line.at(76, load=0)
    assert (d.replicas, d.reason) == (4, Reason.SCALE_DOWN_LIMIT)
    # t=77: the -4 of t=76 is inside its 60 s period: stay at 4.
    d = line.at(77, load=0)
    assert (d.replicas, d.reason) == (4, Reason.SCALE_DOWN_LIMIT)
    # t=136: the period is over; -50 % would allow 2, which is also minReplicas.
    d = line.at(136, load=0)
    assert (d.replicas, d.reason) == (2, Reason.TOO_FEW_REPLICAS)


def test_fresh_history_waits_one_window_before_scaling_down() -> None:
    # The first decision seeds the history with the current count
    # (recordInitialRecommendation), so a restarted controller never scales down at once.
    line = Timeline(MISSION, replicas=6)
    d = line.at(0, load=0)
    assert (d.replicas, d.reason) == (6, Reason.SCALE_DOWN_STABILIZED)
    assert line.at(59, load=0).replicas == 6
    # t=60: the seed made at t=0 is no longer after the cutoff 60 - 60 = 0.
    d = line.at(60, load=0)
    assert (d.replicas, d.reason) == (3, Reason.SCALE_DOWN_LIMIT)


def test_scale_up_does_not_wait_for_the_down_window() -> None:
    line = Timeline(MISSION, replicas=2)
    line.at(0, load=0)
    d = line.at(1, load=3)
    assert (d.replicas, d.reason) == (3, Reason.DESIRED_WITHIN_RANGE)


def test_scale_up_is_capped_by_max_replicas() -> None:
    line = Timeline(MISSION, replicas=8)
    d = line.at(0, load=100)
    assert (d.replicas, d.reason) == (10, Reason.TOO_MANY_REPLICAS)


def test_all_metrics_missing_holds_and_keeps_history_unchanged() -> None:
    line = Timeline(MISSION, replicas=4)
    line.at(0, load=4)
    before = line.history
    d = line.at(5, readings={"queue": Unavailable("prometheus timed out")})
    assert (d.replicas, d.reason) == (4, Reason.METRICS_UNAVAILABLE)
    assert "prometheus timed out" in d.message
    assert line.history == before


def test_one_missing_metric_blocks_scale_down_but_not_scale_up() -> None:
    spec = replace(MISSION, metrics=(QUEUE, CPU_TOTAL))
    line = Timeline(spec, replicas=4)
    # CPU says 1 replica would do; the queue is unknown: hold.
    d = line.at(0, readings={"cpu": TotalValue(0.4), "queue": Unavailable("stale")})
    assert (d.replicas, d.reason) == (4, Reason.METRICS_INCOMPLETE)
    # CPU says 8; scaling up on the metrics we have is safe.
    d = line.at(1, readings={"cpu": TotalValue(6.4), "queue": Unavailable("stale")})
    assert (d.replicas, d.reason) == (8, Reason.DESIRED_WITHIN_RANGE)
    assert d.metric == "cpu"


def test_largest_metric_recommendation_wins() -> None:
    spec = replace(MISSION, metrics=(QUEUE, CPU_TOTAL))
    line = Timeline(spec, replicas=4)
    d = line.at(0, readings={"queue": TotalValue(5), "cpu": TotalValue(4.8)})
    assert (d.recommendation, d.metric) == (6, "cpu")
    assert [p.replicas for p in d.proposals] == [5, 6]


@pytest.mark.parametrize(
    ("load", "expected", "reason"),
    [
        pytest.param(4.4, 4, Reason.WITHIN_TOLERANCE, id="ratio-1.10-inside"),
        pytest.param(4.44, 5, Reason.DESIRED_WITHIN_RANGE, id="ratio-1.11-outside"),
        pytest.param(3.6, 4, Reason.WITHIN_TOLERANCE, id="ratio-0.90-inside"),
    ],
)
def test_default_tolerance_is_ten_percent_each_way(
    load: float, expected: int, reason: Reason
) -> None:
    history = History(recommendations=())  # no window history in the way
    spec = replace(MISSION, behavior=replace(MISSION_BEHAVIOR, scale_down=_no_window_down()))
    line = Timeline(spec, replicas=4, history=history)
    d = line.at(0, load=load)
    assert (d.replicas, d.reason) == (expected, reason)


def _no_window_down(tolerance: float = 0.1) -> ScalingRules:
    return replace(MISSION_BEHAVIOR.scale_down, stabilization_window_seconds=0, tolerance=tolerance)


def test_per_direction_tolerance() -> None:
    behavior = Behavior(
        scale_up=replace(MISSION_BEHAVIOR.scale_up, tolerance=0.0),
        scale_down=_no_window_down(tolerance=0.5),
    )
    spec = replace(MISSION, behavior=behavior)
    # 4.2 for 4 replicas is ratio 1.05: over a zero scale-up tolerance.
    assert Timeline(spec, replicas=4, history=History(())).at(0, load=4.2).replicas == 5
    # 2.4 for 4 replicas is ratio 0.6: inside a 0.5 scale-down tolerance.
    d = Timeline(spec, replicas=4, history=History(())).at(0, load=2.4)
    assert (d.replicas, d.reason) == (4, Reason.WITHIN_TOLERANCE)


def _rules(select: SelectPolicy, *policies: ScalingPolicy) -> ScalingRules:
    return ScalingRules(0, select, policies, 0.1)


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        pytest.param(SelectPolicy.MAX, 20, id="max-takes-the-bigger-change"),
        pytest.param(SelectPolicy.MIN, 14, id="min-takes-the-smaller-change"),
        pytest.param(SelectPolicy.DISABLED, 10, id="disabled-never-scales-up"),
    ],
)
def test_select_policy_on_scale_up(select: SelectPolicy, expected: int) -> None:
    up = _rules(
        select,
        ScalingPolicy(PolicyType.PODS, 4, 60),
        ScalingPolicy(PolicyType.PERCENT, 100, 60),
    )
    spec = PolicySpec(1, 100, (QUEUE,), Behavior(scale_up=up))
    d = Timeline(spec, replicas=10).at(0, load=50)
    assert d.replicas == expected


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        pytest.param(SelectPolicy.MAX, 5, id="max-takes-the-bigger-change"),
        pytest.param(SelectPolicy.MIN, 8, id="min-takes-the-smaller-change"),
        pytest.param(SelectPolicy.DISABLED, 10, id="disabled-never-scales-down"),
    ],
)
def test_select_policy_on_scale_down(select: SelectPolicy, expected: int) -> None:
    down = _rules(
        select,
        ScalingPolicy(PolicyType.PODS, 2, 60),
        ScalingPolicy(PolicyType.PERCENT, 50, 60),
    )
    spec = PolicySpec(1, 100, (QUEUE,), Behavior(scale_down=down))
    d = Timeline(spec, replicas=10, history=History(())).at(0, load=1)
    assert d.replicas == expected


def test_percent_scale_up_rounds_up_and_scale_down_truncates() -> None:
    up = _rules(SelectPolicy.MAX, ScalingPolicy(PolicyType.PERCENT, 10, 60))
    down = _rules(SelectPolicy.MAX, ScalingPolicy(PolicyType.PERCENT, 10, 60))
    spec = PolicySpec(1, 100, (QUEUE,), Behavior(scale_up=up, scale_down=down))
    # 3 * 1.1 = 3.3 -> 4: a small deployment can always grow.
    assert Timeline(spec, replicas=3, history=History(())).at(0, load=30).replicas == 4
    # 3 * 0.9 = 2.7 -> 2.
    assert Timeline(spec, replicas=3, history=History(())).at(0, load=1).replicas == 2


def test_scale_down_events_count_against_a_later_scale_up() -> None:
    # periodStartReplicas = current - added + deleted: after 10 -> 5, growing back
    # is measured from 10 within the period, so +100 % allows up to 20.
    up = _rules(SelectPolicy.MAX, ScalingPolicy(PolicyType.PERCENT, 100, 60))
    down = _rules(SelectPolicy.MAX, ScalingPolicy(PolicyType.PERCENT, 50, 60))
    spec = PolicySpec(1, 100, (QUEUE,), Behavior(scale_up=up, scale_down=down))
    line = Timeline(spec, replicas=10, history=History(()))
    assert line.at(0, load=1).replicas == 5
    d = line.at(10, load=100)
    assert (d.replicas, d.reason) == (20, Reason.SCALE_UP_LIMIT)


def test_scale_up_stabilization_window_takes_the_lowest_recent_recommendation() -> None:
    up = ScalingRules(30, SelectPolicy.MAX, (ScalingPolicy(PolicyType.PERCENT, 900, 15),), 0.1)
    spec = PolicySpec(1, 100, (QUEUE,), Behavior(scale_up=up))
    line = Timeline(spec, replicas=2, history=History(()))
    assert line.at(0, load=2).replicas == 2
    d = line.at(10, load=10)
    assert (d.replicas, d.reason) == (2, Reason.SCALE_UP_STABILIZED)
    d = line.at(20, load=10)
    assert (d.replicas, d.reason) == (2, Reason.SCALE_UP_STABILIZED)
    # t=0's 2 leaves the window (0 is not after 30 - 30); the lowest left is 10.
    d = line.at(30, load=10)
    assert (d.replicas, d.reason) == (10, Reason.DESIRED_WITHIN_RANGE)


@pytest.mark.parametrize(
    ("current", "expected", "reason"),
    [
        pytest.param(12, 10, Reason.CURRENT_ABOVE_MAX, id="above-max"),
        pytest.param(1, 2, Reason.CURRENT_BELOW_MIN, id="below-min"),
        pytest.param(0, 0, Reason.SCALING_DISABLED, id="scaled-to-zero-by-hand"),
    ],
)
def test_current_outside_range_is_corrected_before_metrics(
    current: int, expected: int, reason: Reason
) -> None:
    d = Timeline(MISSION, replicas=current).at(0, load=5)
    assert (d.replicas, d.reason) == (expected, reason)


def test_history_is_bounded_at_a_one_second_cadence() -> None:
    line = Timeline(MISSION, replicas=2)
    for t in range(3600):
        line.at(t, load=(t // 300) % 5)
    assert line.history.recommendations is not None
    assert len(line.history.recommendations) <= 63
    assert len(line.history.scale_up_events) <= 17
    assert len(line.history.scale_down_events) <= 62


def test_decide_is_pure() -> None:
    history = History((Recommendation(5, -10.0),))
    observation = Observation(spec_replicas=5, status_replicas=5, readings={"queue": TotalValue(1)})
    first = decide(MISSION, observation, history, 0.0)
    second = decide(MISSION, observation, history, 0.0)
    assert first == second
    assert history == History((Recommendation(5, -10.0),))
