"""Rate limits from scaling policies: ``convertDesiredReplicasWithBehaviorRate``.

Time is passed in; the scale events come from :class:`~scaler.policy.history.History`.
"""

from __future__ import annotations

import math

from scaler.policy.behavior import Behavior, PolicyType, ScalingRules, SelectPolicy
from scaler.policy.decision import Reason
from scaler.policy.history import ScaleEvent

# The HPA's messages for the ScalingLimited condition, shared with the legacy path.
UP_LIMIT_MESSAGE = "the desired replica count is increasing faster than the maximum scale rate"
DOWN_LIMIT_MESSAGE = "the desired replica count is decreasing faster than the maximum scale rate"
TOO_MANY_MESSAGE = "the desired replica count is more than the maximum replica count"
TOO_FEW_MESSAGE = "the desired replica count is less than the minimum replica count"
WITHIN_RANGE = "the desired count is within the acceptable range"


def change_in_period(events: tuple[ScaleEvent, ...], period_seconds: int, now: float) -> int:
    """``getReplicasChangePerPeriod``: pods changed by events after ``now - period``."""
    cutoff = now - period_seconds
    return sum([change for change, at, _ in events if at > cutoff])


def _period_start(
    current: int,
    up_events: tuple[ScaleEvent, ...],
    down_events: tuple[ScaleEvent, ...],
    period_seconds: int,
    now: float,
) -> int:
    added = change_in_period(up_events, period_seconds, now)
    deleted = change_in_period(down_events, period_seconds, now)
    return current - added + deleted


def scale_up_limit(
    current: int,
    up_events: tuple[ScaleEvent, ...],
    down_events: tuple[ScaleEvent, ...],
    rules: ScalingRules,
    now: float,
) -> int:
    """``calculateScaleUpLimitWithScalingRules``: the most replicas the policies allow.

    Each policy's limit is measured from the replica count at the start of its period
    (current minus pods added plus pods removed inside the period). Percent rounds up,
    so a small deployment can always grow. ``Max`` takes the largest limit, ``Min``
    the smallest, ``Disabled`` allows no growth.
    """
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for policy in rules.policies:
        start = _period_start(current, up_events, down_events, policy.period_seconds, now)
        if policy.type is PolicyType.PODS:
            proposals.append(start + policy.value)
        else:
            # Same float64 expression as upstream, so rounding matches bit for bit.
            proposals.append(math.ceil(float(start) * (1 + float(policy.value) / 100)))
    if not proposals:
        return current
    return min(proposals) if rules.select_policy is SelectPolicy.MIN else max(proposals)


def scale_down_limit(
    current: int,
    up_events: tuple[ScaleEvent, ...],
    down_events: tuple[ScaleEvent, ...],
    rules: ScalingRules,
    now: float,
) -> int:
    """``calculateScaleDownLimitWithBehaviors``: the fewest replicas the policies allow.

    Percent truncates toward zero (Go's ``int32(float64)``). ``Max`` selects the policy
    that allows the biggest change (the lowest count), ``Min`` the smallest change.
    """
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for policy in rules.policies:
        start = _period_start(current, up_events, down_events, policy.period_seconds, now)
        if policy.type is PolicyType.PODS:
            proposals.append(start - policy.value)
        else:
            proposals.append(int(float(start) * (1 - float(policy.value) / 100)))
    if not proposals:
        return current
    return max(proposals) if rules.select_policy is SelectPolicy.MIN else min(proposals)


def limit_by_rate(
    *,
    desired: int,
    current: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior,
    up_events: tuple[ScaleEvent, ...],
    down_events: tuple[ScaleEvent, ...],
    now: float,
) -> tuple[int, Reason, str]:
    """Apply the rate limit of the scaling direction, then min/max.

    As upstream: only the direction of change is checked, so ``desired == current``
    passes unchanged; the limit is never allowed to push past ``current`` in the
    wrong direction while old events are still inside their period.
    """
    if desired > current:
        limit = max(
            scale_up_limit(current, up_events, down_events, behavior.scale_up, now), current
        )
        if max_replicas > limit:
            allowed, reason, message = limit, Reason.SCALE_UP_LIMIT, UP_LIMIT_MESSAGE
        else:
            allowed, reason, message = max_replicas, Reason.TOO_MANY_REPLICAS, TOO_MANY_MESSAGE
        if desired > allowed:
            return allowed, reason, message
    elif desired < current:
        limit = min(
            scale_down_limit(current, up_events, down_events, behavior.scale_down, now), current
        )
        if min_replicas < limit:
            allowed, reason, message = limit, Reason.SCALE_DOWN_LIMIT, DOWN_LIMIT_MESSAGE
        else:
            allowed, reason, message = min_replicas, Reason.TOO_FEW_REPLICAS, TOO_FEW_MESSAGE
        if desired < allowed:
            return allowed, reason, message
    return desired, Reason.DESIRED_WITHIN_RANGE, WITHIN_RANGE
