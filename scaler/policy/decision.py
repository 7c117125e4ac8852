"""The one decision type shared by the controller, the simulator, logs and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from scaler.policy.milli import format_milli


class Reason(StrEnum):
    """Why a decision came out as it did: a closed set, safe as a metric label.

    Values mirror the reasons the HPA controller writes into its conditions and events
    where one exists (``ScaleUpLimit``, ``TooFewReplicas``, ``ScaleDownStabilized``...).
    """

    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    WITHIN_TOLERANCE = "WithinTolerance"
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    TOO_MANY_REPLICAS = "TooManyReplicas"
    TOO_FEW_REPLICAS = "TooFewReplicas"
    CURRENT_ABOVE_MAX = "CurrentAboveMax"
    CURRENT_BELOW_MIN = "CurrentBelowMin"
    SCALING_DISABLED = "ScalingDisabled"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    METRICS_INCOMPLETE = "MetricsIncomplete"
    # Set by the controller around the engine, never by the HPA's rules themselves:
    FALLBACK = "Fallback"  # metrics missing for too long: hold at least the fallback
    PAUSED = "Paused"  # a person paused scaling with an annotation
    PINNED = "Pinned"  # a person pinned the replica count with an annotation
    HPA_CONFLICT = "HPAConflict"  # an HPA already scales this Deployment
    # Scale to zero (scaler/policy/zero.py), around the engine as KEDA's activation:
    ACTIVATION = "Activation"  # a request at zero replicas: one, at once
    IDLE = "Idle"  # at zero replicas and nothing to serve: hold zero
    SCALED_TO_ZERO = "ScaledToZero"  # idle for idleSeconds at one replica: zero


@dataclass(frozen=True, slots=True)
class MetricProposal:
    """What one metric asked for.

    ``replicas`` is ``None`` when the metric could not be used; ``error`` then says why.
    ``value`` is the current value in the target's units (per pod for AverageValue,
    percent of requests for Utilization); ``within_tolerance`` is set when the usage
    ratio fell inside the tolerance band and the metric therefore proposed no change.
    ``average_value``: what the HPA reports in ``currentMetrics``, in integer
    milli-units, exact: the raw average per pod (``averageValue``; for Utilization
    beside the percent in ``value``), or an External Value target's value.
    """

    name: str
    replicas: int | None
    value: float | None
    target: float
    within_tolerance: bool = False
    error: str | None = None
    average_value: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A replica count and the reason for it.

    ``current``: replicas before the decision (the scale subresource's spec).
    ``recommendation``: what the metrics asked for before stabilization and limits
    (``None`` when no metric-based recommendation was made).
    ``stabilized``: the recommendation after the stabilization windows.
    ``replicas``: the final answer, after rate limits and min/max.
    ``text``: the HPA's sentence for the reason; ``message`` adds the numbers. It is
    built on demand, as most decisions at a 1 s cadence are never logged.
    """

    replicas: int
    reason: Reason
    text: str
    current: int
    recommendation: int | None = None
    stabilized: int | None = None
    metric: str | None = None
    proposals: tuple[MetricProposal, ...] = ()

    @property
    def changes_scale(self) -> bool:
        return self.replicas != self.current

    @property
    def message(self) -> str:
        """A readable sentence: the reason's text, then what the winning metric said."""
        for proposal in self.proposals:
            if proposal.name == self.metric:
                return f"{self.text}; {explain(proposal)}"
        return self.text


def explain(proposal: MetricProposal) -> str:
    if proposal.replicas is None:
        return f"metric {proposal.name} unavailable: {proposal.error}"
    value = "n/a" if proposal.value is None else f"{proposal.value:g}"
    average = ""
    if proposal.average_value is not None:
        average = f" (averageValue {format_milli(proposal.average_value)})"
    return (
        f"metric {proposal.name} = {value}{average} against target {proposal.target:g} "
        f"proposes {proposal.replicas}"
    )
