"""Replicas per metric, as the HPA's ``replica_calculator.go`` computes them.

Values are converted to integer milli-units first, as the HPA does with
``Quantity.MilliValue()``, so averages truncate exactly where upstream's do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from scaler.policy.milli import MAX_INT64, go_int64
from scaler.policy.milli import milli as milli  # re-exported for the config's bounds
from scaler.policy.pods import (
    DEFAULT_CPU_INITIALIZATION_PERIOD,
    DEFAULT_INITIAL_READINESS_DELAY,
    Pod,
    PodGroups,
    PodSample,
    group_pods,
    ready_pod_count,
)
from scaler.policy.readings import (
    MetricReading,
    MetricSpec,
    PodValues,
    SourceType,
    TargetType,
    TotalValue,
    Unavailable,
)


class CalculationError(ValueError):
    """A metric's replica count cannot be computed; the message says why."""


class Tolerances(NamedTuple):
    """Per-direction tolerance: no change while ``1 - down <= ratio <= 1 + up``."""

    scale_down: float
    scale_up: float

    def within(self, usage_ratio: float) -> bool:
        return (1.0 - self.scale_down) <= usage_ratio <= (1.0 + self.scale_up)


class Context(NamedTuple):
    """What every metric calculation sees besides its own reading."""

    spec_replicas: int
    status_replicas: int
    pods: tuple[Pod, ...]
    tolerances: Tolerances
    now: float
    cpu_initialization_period: float = DEFAULT_CPU_INITIALIZATION_PERIOD
    initial_readiness_delay: float = DEFAULT_INITIAL_READINESS_DELAY


class Calculated(NamedTuple):
    """A metric's replica proposal and its current value in the target's units.

    ``average``: what the HPA reports in ``currentMetrics``, in integer milli-units:
    the raw average per pod (``averageValue``; for Utilization beside the percent),
    or the value of an External Value target.
    """

    replicas: int
    value: float
    within_tolerance: bool = False
    average: int | None = None


MAX_INT32 = 2**31 - 1


def _capped(replicas: int) -> int:
    """Upstream caps External proposals at MaxInt32 instead of overflowing."""
    return min(replicas, MAX_INT32)


def _div(a: int, b: int) -> int:
    """Go's integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _ratio(numerator: float, denominator: float) -> float:
    """Go's float64 division, which gives Inf or NaN instead of raising."""
    if denominator == 0:
        return math.nan if numerator == 0 else math.copysign(math.inf, numerator)
    return float(numerator) / float(denominator)  # each a float64 first, as in Go


def calculate(metric: MetricSpec, reading: MetricReading, ctx: Context) -> Calculated:
    """Dispatch on source and target type, as ``computeReplicasForMetric`` does."""
    if isinstance(reading, Unavailable):
        raise CalculationError(reading.reason)
    if metric.source is SourceType.EXTERNAL:
        if not isinstance(reading, TotalValue):
            raise CalculationError(f"metric {metric.name!r} expects one value, got per-pod values")
        if not math.isfinite(reading.value):
            raise CalculationError(f"metric {metric.name!r} is {reading.value}")
        if metric.target_type is TargetType.VALUE:
            return external_value(milli(reading.value), milli(metric.target), ctx)
        return external_per_pod(milli(reading.value), milli(metric.target), ctx)
    if not isinstance(reading, PodValues):
        raise CalculationError(f"metric {metric.name!r} expects per-pod values, got one value")
    cpu = metric.source is SourceType.RESOURCE and metric.resource == "cpu"
    if metric.target_type is TargetType.UTILIZATION:
        return resource_utilization(reading.samples, int(metric.target), cpu=cpu, ctx=ctx)
    return plain_per_pod(reading.samples, milli(metric.target), cpu=cpu, ctx=ctx)


def external_value(usage: int, target: int, ctx: Context) -> Calculated:
    """``GetExternalMetricReplicas`` via ``getUsageRatioReplicaCount``."""
    usage_ratio = _ratio(usage, target)
    value = usage / 1000
    if ctx.spec_replicas == 0:
        return Calculated(_capped(math.ceil(usage_ratio)), value, average=usage)
    if ctx.tolerances.within(usage_ratio):
        return Calculated(ctx.spec_replicas, value, within_tolerance=True, average=usage)
    if not ctx.pods:
        raise CalculationError("no pods returned by selector while calculating replica count")
    replicas = _capped(math.ceil(usage_ratio * ready_pod_count(ctx.pods)))
    return Calculated(replicas, value, average=usage)


def external_per_pod(usage: int, target: int, ctx: Context) -> Calculated:
    """``GetExternalPerPodMetricReplicas``: total against target x status replicas."""
    replicas = ctx.status_replicas
    usage_ratio = _ratio(usage, float(target) * replicas)
    per_pod = _per_pod_usage(usage, replicas)
    if ctx.tolerances.within(usage_ratio):
        return Calculated(replicas, per_pod / 1000, within_tolerance=True, average=per_pod)
    replicas_wanted = _capped(math.ceil(float(usage) / float(target)))
    return Calculated(replicas_wanted, per_pod / 1000, average=per_pod)


def _per_pod_usage(usage: int, replicas: int) -> int:
    """The reported usage per replica, in float64 as upstream computes it, with its cap:
    a usage that is MaxInt64 as a float is reported as MaxInt64 (not 2^63)."""
    if not replicas:
        return usage
    if float(usage) >= float(MAX_INT64):
        return MAX_INT64
    return go_int64(math.ceil(float(usage) / float(replicas)))


def _milli_metrics(samples: Mapping[str, PodSample]) -> dict[str, int]:
    try:
        return {name: milli(sample.value) for name, sample in samples.items()}
    except (ValueError, OverflowError) as error:  # round() refuses NaN and infinities
        bad = sorted(n for n, s in samples.items() if not math.isfinite(s.value))
        raise CalculationError(f"metric is not finite for pods {', '.join(bad)}") from error


def _grouped(
    samples: Mapping[str, PodSample], cpu: bool, ctx: Context
) -> tuple[PodGroups, dict[str, int]]:
    """Group pods and drop the samples of ignored and unready pods."""
    if not ctx.pods:
        raise CalculationError("no pods returned by selector while calculating replica count")
    groups = group_pods(
        ctx.pods,
        samples,
        cpu=cpu,
        now=ctx.now,
        cpu_initialization_period=ctx.cpu_initialization_period,
        initial_readiness_delay=ctx.initial_readiness_delay,
    )
    metrics = _milli_metrics(samples)
    for name in groups.ignored:
        metrics.pop(name, None)
    for name in groups.unready:
        metrics.pop(name, None)
    if not metrics:
        raise CalculationError("did not receive metrics for targeted pods (pods might be unready)")
    return groups, metrics


def _keeps_direction(usage_ratio: float, new_ratio: float, tolerances: Tolerances) -> bool:
    """False when the rebalanced ratio is within tolerance or flips the direction."""
    if tolerances.within(new_ratio):
        return False
    return not ((usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio))


def _rebalanced(new_ratio: float, count: int, current: int) -> int:
    """Replicas from the rebalanced ratio, unless the pod count flips the direction."""
    replicas = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def _utilization(
    metrics: Mapping[str, int], requests: Mapping[str, int], target: int
) -> tuple[float, int, int]:
    """``GetResourceUtilizationRatio``: integer percent of requests, then / target; and
    the raw average usage per pod. Exact: upstream falls back to ``big.Int`` where an
    int64 sum would overflow, and an average of int64 values fits an int64."""
    total = 0
    requested = 0
    entries = 0
    for name, value in metrics.items():
        request = requests.get(name)
        if request is None:
            continue  # extraneous metrics (pods we do not know) are skipped
        total += value
        requested += request
        entries += 1
    if requested == 0:
        raise CalculationError("no metrics returned matched known pods")
    utilization = _div(total * 100, requested)
    return utilization / target, utilization, _div(total, entries)


def _requests(pods: tuple[Pod, ...]) -> dict[str, int]:
    """``calculatePodRequests``: every pod must declare a request."""
    missing = [pod.name for pod in pods if pod.request is None]
    if missing:
        raise CalculationError(f"missing request for the resource in pod {missing[0]}")
    return {pod.name: milli(pod.request or 0.0) for pod in pods}


def resource_utilization(
    samples: Mapping[str, PodSample], target: int, *, cpu: bool, ctx: Context
) -> Calculated:
    """``GetResourceReplicas``: Utilization of requests, with missing/unready pods.

    Pods without a sample count as using max(100 %, target) of their request when
    scaling down and 0 when scaling up; unready pods count as 0 when scaling up. If
    that rebalancing lands within tolerance or flips the direction, nothing changes.
    """
    groups, metrics = _grouped(samples, cpu, ctx)
    requests = _requests(ctx.pods)
    usage_ratio, utilization, raw = _utilization(metrics, requests, target)
    tolerances = ctx.tolerances
    current = ctx.spec_replicas
    scale_up_with_unready = bool(groups.unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if tolerances.within(usage_ratio):
            return Calculated(current, utilization, True, raw)
        return Calculated(math.ceil(usage_ratio * groups.ready_count), utilization, average=raw)
    if groups.missing and usage_ratio < 1.0:
        fallback = max(100, target)
        for name in groups.missing:
            metrics[name] = _div(requests[name] * fallback, 100)
    elif groups.missing and usage_ratio > 1.0:
        for name in groups.missing:
            metrics[name] = 0
    if scale_up_with_unready:
        for name in groups.unready:
            metrics[name] = 0
    new_ratio, _, _ = _utilization(metrics, requests, target)
    if not _keeps_direction(usage_ratio, new_ratio, tolerances):
        return Calculated(current, utilization, tolerances.within(new_ratio), raw)
    return Calculated(_rebalanced(new_ratio, len(metrics), current), utilization, average=raw)


def _average(metrics: Mapping[str, int], target: int) -> tuple[float, int]:
    """``GetMetricUsageRatio``: the truncated average against the target."""
    usage = _div(sum(metrics.values()), len(metrics))
    return float(usage) / float(target), usage


def plain_per_pod(
    samples: Mapping[str, PodSample], target: int, *, cpu: bool, ctx: Context
) -> Calculated:
    """``calcPlainMetricReplicas``: a per-pod AverageValue, with missing/unready pods.

    Pods without a sample count as exactly the target when scaling down and 0
    otherwise; unready pods count as 0 when scaling up.
    """
    groups, metrics = _grouped(samples, cpu, ctx)
    usage_ratio, usage = _average(metrics, target)
    tolerances = ctx.tolerances
    current = ctx.spec_replicas
    value = usage / 1000
    scale_up_with_unready = bool(groups.unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if tolerances.within(usage_ratio):
            return Calculated(current, value, True, usage)
        return Calculated(math.ceil(usage_ratio * groups.ready_count), value, average=usage)
    if groups.missing and usage_ratio != 1.0:
        # At exactly 1.0 upstream fills nothing and the ratio stays within tolerance.
        for name in groups.missing:
            metrics[name] = target if usage_ratio < 1.0 else 0
    if scale_up_with_unready:
        for name in groups.unready:
            metrics[name] = 0
    new_ratio, _ = _average(metrics, target)
    if not _keeps_direction(usage_ratio, new_ratio, tolerances):
        return Calculated(current, value, tolerances.within(new_ratio), usage)
    return Calculated(_rebalanced(new_ratio, len(metrics), current), value, average=usage)
