"""What a decision is made from: metric specifications (source, target type, value)
and the readings of them at one poll. ("metrics" elsewhere means Prometheus
instruments.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from scaler.policy.pods import PodSample


class SourceType(StrEnum):
    """How a metric's values relate to pods, as the HPA's ``MetricSourceType``.

    ``Resource``: per-pod usage of a resource against the pods' requests (CPU).
    ``Pods``: a per-pod value, averaged over the pods.
    ``External``: one number for the whole target (series are summed).
    """

    RESOURCE = "Resource"
    PODS = "Pods"
    EXTERNAL = "External"


class TargetType(StrEnum):
    """The HPA's ``MetricTargetType``."""

    UTILIZATION = "Utilization"
    AVERAGE_VALUE = "AverageValue"
    VALUE = "Value"


# Which targets each source accepts, as the HPA's API validation allows them.
ALLOWED_TARGETS: Mapping[SourceType, tuple[TargetType, ...]] = {
    SourceType.RESOURCE: (TargetType.UTILIZATION, TargetType.AVERAGE_VALUE),
    SourceType.PODS: (TargetType.AVERAGE_VALUE,),
    SourceType.EXTERNAL: (TargetType.VALUE, TargetType.AVERAGE_VALUE),
}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of a target.

    ``target``: for Utilization an integer percent of the pods' requests (as
    ``averageUtilization``); otherwise a value in the metric's own unit, per pod for
    AverageValue. ``resource``: the resource name of a Resource metric; CPU gets the
    HPA's extra readiness handling.
    """

    name: str
    source: SourceType
    target_type: TargetType
    target: float
    resource: str = "cpu"


@dataclass(frozen=True, slots=True)
class TotalValue:
    """An External metric's value: one number for the whole target."""

    value: float


@dataclass(frozen=True, slots=True)
class PodValues:
    """A Resource or Pods metric's values, by pod name."""

    samples: Mapping[str, PodSample] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The metric could not be read this time; ``reason`` says why."""

    reason: str


MetricReading = TotalValue | PodValues | Unavailable


def reported(metric: MetricSpec) -> str:
    """What the metric reports beside its proposal, as the HPA's ``currentMetrics``
    (``scaler config check``)."""
    if metric.target_type is TargetType.UTILIZATION:
        return "averageUtilization (percent of requests) and averageValue (usage per pod)"
    if metric.target_type is TargetType.VALUE:
        return "value: the total"
    if metric.source is SourceType.EXTERNAL:
        return "averageValue: the total per existing replica"
    return "averageValue: the average per pod"
