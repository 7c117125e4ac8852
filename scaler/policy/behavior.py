"""The HPA's ``autoscaling/v2`` behavior block: scaling rules and their defaults.

Mirrors ``HPAScalingRules`` / ``HPAScalingPolicy`` and the API defaulting in
``pkg/apis/autoscaling/v2/defaults.go`` (``GenerateHPAScaleUpRules`` and
``GenerateHPAScaleDownRules``): a rule that is present keeps its own fields and takes
the default for each field it omits.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PolicyType(StrEnum):
    """``HPAScalingPolicyType``: a limit in pods or in percent of the replicas."""

    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(StrEnum):
    """``ScalingPolicySelect``: which policy's limit wins when there are several."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """At most ``value`` pods (or percent) of change per ``period_seconds``."""

    type: PolicyType
    value: int
    period_seconds: int


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """One direction's rules.

    ``stabilization_window_seconds``: seconds of past recommendations considered.
    ``tolerance``: ratio (0..1) around a usage ratio of 1.0 inside which no change is
    made in this direction (Kubernetes 1.33+ per-direction tolerance).
    """

    stabilization_window_seconds: int
    select_policy: SelectPolicy
    policies: tuple[ScalingPolicy, ...]
    tolerance: float

    @property
    def longest_policy_period(self) -> int:
        """``getLongestPolicyPeriod``: how long scale events must be remembered."""
        return max((p.period_seconds for p in self.policies), default=0)


# kube-controller-manager's --horizontal-pod-autoscaler-tolerance default.
DEFAULT_TOLERANCE = 0.1
# kube-controller-manager's --horizontal-pod-autoscaler-downscale-stabilization default,
# which maybeInitScaleDownStabilizationWindow fills in when scaleDown omits its window.
DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS = 300

# defaultHPAScaleUpRules: no window, the larger of +4 pods or +100 % per 15 s.
DEFAULT_SCALE_UP = ScalingRules(
    stabilization_window_seconds=0,
    select_policy=SelectPolicy.MAX,
    policies=(
        ScalingPolicy(PolicyType.PODS, 4, 15),
        ScalingPolicy(PolicyType.PERCENT, 100, 15),
    ),
    tolerance=DEFAULT_TOLERANCE,
)

# defaultHPAScaleDownRules: 300 s window, down to any count (-100 %) per 15 s.
DEFAULT_SCALE_DOWN = ScalingRules(
    stabilization_window_seconds=DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS,
    select_policy=SelectPolicy.MAX,
    policies=(ScalingPolicy(PolicyType.PERCENT, 100, 15),),
    tolerance=DEFAULT_TOLERANCE,
)


@dataclass(frozen=True, slots=True)
class Behavior:
    """``HorizontalPodAutoscalerBehavior`` with every default filled in.

    ``legacy``: the target had no ``behavior`` block at all. The HPA then takes its
    legacy path (``normalizeDesiredReplicas``): scale up by at most max(2 x current,
    4) per decision, no scale-up window, a scale-down window of the controller-wide
    default, no rate policies. Of the rules only ``scale_down``'s window and the two
    tolerances are read on that path.
    """

    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN
    legacy: bool = False


# A target without ``behavior``: the legacy path, with the controller-wide defaults
# (the 300 s downscale stabilization and the 0.1 tolerance) in its rules.
LEGACY_BEHAVIOR = Behavior(legacy=True)


# The mission's policy, carried over from the seed's CPU HPA: scale up at once by up
# to +100 % per 15 s; scale down after a 60 s window by at most -50 % per 60 s.
MISSION_BEHAVIOR = Behavior(
    scale_up=ScalingRules(
        stabilization_window_seconds=0,
        select_policy=SelectPolicy.MAX,
        policies=(ScalingPolicy(PolicyType.PERCENT, 100, 15),),
        tolerance=DEFAULT_TOLERANCE,
    ),
    scale_down=ScalingRules(
        stabilization_window_seconds=60,
        select_policy=SelectPolicy.MAX,
        policies=(ScalingPolicy(PolicyType.PERCENT, 50, 60),),
        tolerance=DEFAULT_TOLERANCE,
    ),
)
