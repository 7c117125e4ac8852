"""What each metric reports beside its proposal, as the HPA's ``currentMetrics``:
the raw average in integer milli-units (``averageValue``, or ``value`` for an
External Value target), exact at the int64 extremes (issue 13, point 10)."""

from __future__ import annotations

import pytest

from scaler.policy import (
    MetricSpec,
    Observation,
    Pod,
    PodSample,
    PodValues,
    PolicySpec,
    SourceType,
    TargetType,
    TotalValue,
    context,
    propose_metric,
)
from scaler.policy.decision import explain
from scaler.policy.milli import MAX_INT64, MIN_INT64, format_milli, go_int64, milli

PODS = tuple(
    Pod(f"p{i}", request=1.0, start_time=-1000.0, ready_transition_time=-1000.0) for i in range(3)
)


def _proposal(metric: MetricSpec, reading: TotalValue | PodValues, pods: tuple[Pod, ...] = PODS):
    spec = PolicySpec(min_replicas=1, max_replicas=10, metrics=(metric,))
    observation = Observation(len(pods), len(pods), pods, {metric.name: reading})
    return propose_metric(metric, reading, context(spec, observation, 0.0))


def _per_pod(*values: float) -> PodValues:
    return PodValues({f"p{i}": PodSample(v) for i, v in enumerate(values)})


def test_a_pods_metric_reports_its_truncated_average() -> None:
    metric = MetricSpec("qps", SourceType.PODS, TargetType.AVERAGE_VALUE, 15.0)
    p = _proposal(metric, _per_pod(20.0, 10.0, 30.001))
    # (20000 + 10000 + 30001) / 3 truncates to 20000 milli, as GetMetricUsageRatio does.
    assert (p.replicas, p.average_value) == (4, 20000)
    assert "averageValue 20" in explain(p)


def test_a_utilization_metric_reports_percent_and_raw_usage_per_pod() -> None:
    metric = MetricSpec("cpu", SourceType.RESOURCE, TargetType.UTILIZATION, 50.0)
    p = _proposal(metric, _per_pod(0.3, 0.6, 0.9))
    # 1800m of 3000m requested is 60 %; the raw average is 600m per pod.
    assert (p.value, p.average_value) == (60, 600)
    assert "averageValue 600m" in explain(p)


def test_an_external_average_value_reports_the_total_per_existing_replica() -> None:
    metric = MetricSpec("queue", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 2.15)
    p = _proposal(metric, TotalValue(8.6))
    assert (p.replicas, p.average_value) == (4, 2867)  # ceil(8600 / 3)


def test_an_external_value_reports_the_value() -> None:
    metric = MetricSpec("queue", SourceType.EXTERNAL, TargetType.VALUE, 4.4)
    p = _proposal(metric, TotalValue(8.6))
    assert p.average_value == 8600


def test_an_external_value_beyond_int64_reports_max_int64_not_2_to_the_63() -> None:
    # float(MaxInt64) is 2^63: the HPA caps the usage at MaxInt64 instead.
    metric = MetricSpec("queue", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 1.0)
    p = _proposal(metric, TotalValue(MAX_INT64 / 1000), pods=PODS[:1])
    assert p.average_value == MAX_INT64 == 9223372036854775807
    assert "averageValue 9223372036854775807m" in explain(p)


def test_a_per_pod_value_beyond_int64_is_capped_and_averaged_exactly() -> None:
    metric = MetricSpec("qps", SourceType.PODS, TargetType.AVERAGE_VALUE, 1.0)
    p = _proposal(metric, _per_pod(1e17, 1e17, 1e17))
    # Each pod's milli-value caps at MaxInt64; the sum is exact (upstream falls back to
    # big.Int when int64 overflows), so the average is MaxInt64 again, not a float.
    assert p.average_value == MAX_INT64


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (1500, "1500m"),
        (2000, "2"),
        (-5000, "-5"),
        (1_000_000, "1k"),
        (1_500_000, "1500"),
        (MAX_INT64, "9223372036854775807m"),
        (10**21, "1E"),
    ],
)
def test_format_milli_is_the_canonical_decimal_quantity(value: int, shown: str) -> None:
    assert format_milli(value) == shown


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.0**63, MAX_INT64),
        (-(2.0**64), MIN_INT64),
        (float("inf"), MAX_INT64),
        (12.9, 12),
        (-12.9, -12),
    ],
)
def test_go_int64_truncates_and_saturates(value: float, expected: int) -> None:
    assert go_int64(value) == expected


def test_milli_rounds_and_caps_at_int64() -> None:
    assert milli(0.0015) == 2 and milli(1e300) == MAX_INT64 and milli(-1e300) == MIN_INT64
