"""The HPA's path for a target without ``behavior``: ``normalizeDesiredReplicas``.

Upstream keeps this path for HPAs whose ``spec.behavior`` is nil (the API server
does not default a missing block): a scale-down window of the controller-wide
``--horizontal-pod-autoscaler-downscale-stabilization`` and a scale-up limit of
max(2 x current, 4) per decision (``calculateScaleUpLimit``), with no scale-up
window and no rate policies over periods. Time is passed in.
"""

from __future__ import annotations

from scaler.policy.decision import Reason
from scaler.policy.history import Recommendation
from scaler.policy.rate import TOO_FEW_MESSAGE, TOO_MANY_MESSAGE, UP_LIMIT_MESSAGE, WITHIN_RANGE
from scaler.policy.stabilization import DOWN_MESSAGE, Stabilized

# scaleUpLimitFactor and scaleUpLimitMinimum in horizontal.go.
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0


def describe_legacy(scale_down_window: int, tolerance: float) -> str:
    """The legacy path in one line, for ``scaler config check``."""
    return (
        "no behavior: the HPA's legacy path: scale up to at most max(2 x current, 4) per "
        f"decision, no scale-up window; scaleDown window {scale_down_window}s, no rate "
        f"policies; tolerance {tolerance:g}"
    )


def stabilize_legacy(
    recommendations: tuple[Recommendation, ...], *, desired: int, window: float, now: float
) -> Stabilized:
    """``stabilizeRecommendation``: the highest recommendation not older than ``window``.

    Unlike the behavior path, a record exactly ``window`` old still counts (upstream
    drops only those ``Before`` the cutoff), and the current count plays no part:
    a higher recommendation in the window can raise the answer above it. The new
    recommendation overwrites the last record older than the window, or is appended.
    """
    cutoff = now - window
    highest = desired
    outdated = None
    for index, (count, at) in enumerate(recommendations):
        if at < cutoff:
            outdated = index
        elif count > highest:
            highest = count
    new = Recommendation(desired, now)
    if outdated is None:
        stored = (*recommendations, new)
    else:
        stored = (*recommendations[:outdated], new, *recommendations[outdated + 1 :])
    return Stabilized(highest, Reason.SCALE_DOWN_STABILIZED, DOWN_MESSAGE, stored)


def scale_up_limit_legacy(current: int) -> int:
    """``calculateScaleUpLimit``: int32(max(2 x current, 4)), in float64 as upstream."""
    return int(max(SCALE_UP_LIMIT_FACTOR * float(current), SCALE_UP_LIMIT_MINIMUM))


def limit_legacy(
    *, desired: int, current: int, min_replicas: int, max_replicas: int
) -> tuple[int, Reason, str]:
    """``convertDesiredReplicasWithRules``: clamp to min and to the lower of max and the
    scale-up limit. The direction of change is not checked: the minimum wins first."""
    limit = scale_up_limit_legacy(current)
    if max_replicas > limit:
        allowed, reason, message = limit, Reason.SCALE_UP_LIMIT, UP_LIMIT_MESSAGE
    else:
        allowed, reason, message = max_replicas, Reason.TOO_MANY_REPLICAS, TOO_MANY_MESSAGE
    if desired < min_replicas:
        return min_replicas, Reason.TOO_FEW_REPLICAS, TOO_FEW_MESSAGE
    if desired > allowed:
        return allowed, reason, message
    return desired, Reason.DESIRED_WITHIN_RANGE, WITHIN_RANGE
