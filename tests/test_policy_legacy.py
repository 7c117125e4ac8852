"""A target without ``behavior``: the HPA's legacy path (``normalizeDesiredReplicas``).

Upstream takes this path whenever ``spec.behavior`` is nil: scale up by at most
max(2 x current, 4) per sync, no scale-up window, and a scale-down window of the
controller-wide ``--horizontal-pod-autoscaler-downscale-stabilization`` (300 s).
"""

from __future__ import annotations

import pytest

from scaler.config import parse_config
from scaler.policy import (
    LEGACY_BEHAVIOR,
    History,
    MetricSpec,
    PolicySpec,
    Reason,
    Recommendation,
    SourceType,
    TargetType,
)
from scaler.policy.legacy import limit_legacy, stabilize_legacy
from tests.support.timeline import Timeline

QUEUE = MetricSpec("queue", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 1.0)
LEGACY = PolicySpec(min_replicas=1, max_replicas=20, metrics=(QUEUE,), behavior=LEGACY_BEHAVIOR)


def _target(**extra: object) -> dict[str, object]:
    metric = {
        "name": "queue",
        "query": "sum(q)",
        "target": {"type": "AverageValue", "averageValue": 1},
    }
    return {
        "targets": [
            {"namespace": "ns", "deployment": "d", "minReplicas": 1, "maxReplicas": 20}
            | {"metrics": [metric]}
            | extra
        ]
    }


def test_a_carried_over_hpa_without_behavior_decides_6_not_7() -> None:
    # The behavior path's default would allow max(3 + 4, 2 x 3) = 7; the legacy
    # path allows max(2 x 3, 4) = 6 (calculateScaleUpLimit).
    spec = parse_config(_target()).targets[0].to_policy()
    line = Timeline(spec, replicas=3)
    d = line.at(0, load=12)
    assert (d.recommendation, d.replicas, d.reason) == (12, 6, Reason.SCALE_UP_LIMIT)


def test_an_empty_behavior_block_is_not_legacy() -> None:
    # behavior: {} is a non-nil behavior upstream: every rule defaulted, 3 -> 7.
    spec = parse_config(_target(behavior={})).targets[0].to_policy()
    assert not spec.behavior.legacy
    d = Timeline(spec, replicas=3).at(0, load=12)
    assert (d.replicas, d.reason) == (7, Reason.SCALE_UP_LIMIT)


def test_legacy_scale_up_limit_is_per_sync_not_per_period() -> None:
    line = Timeline(LEGACY, replicas=1)
    # t=0: 1 replica may grow to max(2, 4) = 4.
    d = line.at(0, load=30)
    assert (d.replicas, d.reason) == (4, Reason.SCALE_UP_LIMIT)
    # t=1: no scale events count on this path: 4 may double again at once.
    d = line.at(1, load=30)
    assert (d.replicas, d.reason) == (8, Reason.SCALE_UP_LIMIT)
    # t=2: 16 is the limit, 20 the maximum: 16.
    d = line.at(2, load=30)
    assert (d.replicas, d.reason) == (16, Reason.SCALE_UP_LIMIT)
    # t=3: max(32, 4) is above maxReplicas, so maxReplicas limits.
    d = line.at(3, load=30)
    assert (d.replicas, d.reason) == (20, Reason.TOO_MANY_REPLICAS)


def test_legacy_has_no_scale_up_window() -> None:
    # A lower recommendation a moment ago does not hold a scale-up back.
    line = Timeline(LEGACY, replicas=4)
    assert line.at(0, load=4).replicas == 4
    d = line.at(1, load=6)
    assert (d.replicas, d.reason) == (6, Reason.DESIRED_WITHIN_RANGE)


def test_legacy_scale_down_window_is_300_s_and_includes_its_edge() -> None:
    line = Timeline(LEGACY, replicas=8)
    # t=0 seeds the history with 8 (recordInitialRecommendation).
    d = line.at(0, load=2)
    assert (d.recommendation, d.replicas, d.reason) == (2, 8, Reason.SCALE_DOWN_STABILIZED)
    # t=300: the seed is exactly 300 s old; upstream drops only records Before the
    # cutoff, so it still counts (the behavior path uses a strict After: it would not).
    d = line.at(300, load=2)
    assert (d.replicas, d.reason) == (8, Reason.SCALE_DOWN_STABILIZED)
    # t=301: only 2s are left in the window; no rate limit on the way down.
    d = line.at(301, load=2)
    assert (d.replicas, d.reason) == (2, Reason.DESIRED_WITHIN_RANGE)
    # t=302: the 2 of t=301 holds a drop to 0 for another window.
    d = line.at(302, load=0)
    assert (d.replicas, d.reason) == (2, Reason.SCALE_DOWN_STABILIZED)
    # t=602: only the 0 of t=302 is left; minReplicas bounds it (TooFewReplicas).
    d = line.at(602, load=0)
    assert (d.replicas, d.reason) == (1, Reason.TOO_FEW_REPLICAS)


def test_legacy_window_can_raise_above_current_as_upstream_does() -> None:
    # stabilizeRecommendation takes the highest recommendation in the window without
    # looking at the current count, so a recommendation cut by the scale-up limit
    # is still applied on the next sync even when the metric has fallen since.
    history = History(recommendations=(Recommendation(7, 0.0),))
    line = Timeline(LEGACY, replicas=4, history=history)
    d = line.at(10, load=3)
    assert (d.recommendation, d.replicas, d.reason) == (3, 7, Reason.SCALE_DOWN_STABILIZED)


def test_legacy_records_no_scale_events() -> None:
    # storeScaleEvent returns at once when behavior is nil: nothing would read them.
    line = Timeline(LEGACY, replicas=2)
    line.at(0, load=8)
    assert line.history.scale_up_events == ()


@pytest.mark.parametrize(("current", "limit"), [(1, 4), (2, 4), (3, 6), (10, 20)])
def test_legacy_scale_up_limit_is_max_of_double_and_four(current: int, limit: int) -> None:
    spec = PolicySpec(min_replicas=1, max_replicas=100, metrics=(QUEUE,), behavior=LEGACY_BEHAVIOR)
    d = Timeline(spec, replicas=current).at(0, load=1000)
    assert (d.replicas, d.reason) == (limit, Reason.SCALE_UP_LIMIT)


# upstream: TestConvertDesiredReplicasWithRules (horizontal_test.go); the case with
# minReplicas 0 is left out (scaler requires minReplicas >= 1).
@pytest.mark.parametrize(
    ("current", "desired", "low", "high", "expected", "reason"),
    [
        pytest.param(5, 7, 3, 8, 7, Reason.DESIRED_WITHIN_RANGE, id="within range"),
        pytest.param(3, 1, 2, 8, 2, Reason.TOO_FEW_REPLICAS, id="below minReplicas"),
        pytest.param(20, 1000, 1, 10, 10, Reason.TOO_MANY_REPLICAS, id="maxReplicas limits"),
        pytest.param(3, 1000, 1, 2000, 6, Reason.SCALE_UP_LIMIT, id="scaleUpLimit limits"),
    ],
)
def test_upstream_convert_desired_replicas_with_rules(
    current: int, desired: int, low: int, high: int, expected: int, reason: Reason
) -> None:
    replicas, got, _ = limit_legacy(
        desired=desired, current=current, min_replicas=low, max_replicas=high
    )
    assert (replicas, got) == (expected, reason)


# upstream: TestNormalizeDesiredReplicas, which drives stabilizeRecommendation with a
# 5 min window; times are seconds before now = 0.
@pytest.mark.parametrize(
    ("recommendations", "desired", "expected", "length"),
    [
        pytest.param((), 5, 5, 1, id="empty log"),
        pytest.param(((4, -120.0), (5, -60.0)), 3, 5, 3, id="stabilize"),
        pytest.param(((1, -120.0), (2, -60.0)), 3, 3, 3, id="no stabilize"),
        pytest.param(((10, -600.0), (9, -540.0)), 3, 3, 2, id="no stabilize - old"),
        pytest.param(
            ((10, -600.0), (4, -60.0), (5, -120.0), (9, -540.0)), 3, 5, 4, id="stabilize - old"
        ),
    ],
)
def test_upstream_normalize_desired_replicas(
    recommendations: tuple[tuple[int, float], ...], desired: int, expected: int, length: int
) -> None:
    records = tuple(Recommendation(count, at) for count, at in recommendations)
    stabilized = stabilize_legacy(records, desired=desired, window=300, now=0.0)
    assert (stabilized.replicas, len(stabilized.recommendations)) == (expected, length)
