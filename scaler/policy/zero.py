"""Scale to zero: the rules around the engine for a target whose minimum is 0.

The HPA's math never sees 0 (upstream disables scaling at 0 replicas and refuses a
minimum of 0 without a feature gate), so these rules stand beside it, as KEDA's
``activation`` and ``cooldownPeriod`` stand beside the HPA it drives:

- at 0, a request (the rule's metric above 0) scales to 1 at once, whatever the
  stabilization windows and rate limits say (``activation``);
- at 0, a reading of 0 holds 0 (``idle``), and an unreadable one holds 0 too: never
  scale on unreadable data;
- at 1, when the engine also says 1, the target goes to 0 only once the metric has
  read exactly 0 at every poll for ``idle_seconds`` (``to_zero``). The metric is the
  routers' queue plus in flight, so 0 means nothing is queued or being answered.

Pure, as the engine: the caller passes ``now`` and keeps ``idle_since``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scaler.policy.decision import Decision, Reason
from scaler.policy.readings import MetricReading, TotalValue

DEFAULT_IDLE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class ZeroRule:
    """``metric``: the name of the External metric that counts the requests queued
    and in flight at the routers. ``idle_seconds``: how long it must read exactly 0,
    at every poll, before 1 -> 0 (KEDA's ``cooldownPeriod``)."""

    metric: str
    idle_seconds: float = DEFAULT_IDLE_SECONDS


def zero_value(rule: ZeroRule, readings: Mapping[str, MetricReading]) -> float | None:
    """The rule's metric at this poll; ``None`` when it could not be read (a missing
    reading counts as unavailable, as in ``decide``)."""
    reading = readings.get(rule.metric)
    return reading.value if isinstance(reading, TotalValue) else None


def idle_clock(value: float | None, idle_since: float | None, now: float) -> float | None:
    """Since when the metric has read exactly 0 at every poll: any other reading, an
    unreadable one included, starts the idle period again."""
    if value != 0:
        return None
    return now if idle_since is None else idle_since


def at_zero(rule: ZeroRule, value: float | None) -> Decision:
    """The decision at 0 replicas: activation on a request, otherwise hold."""
    if value is None:
        text = f"scaled to zero and {rule.metric} cannot be read: holding 0"
        return Decision(0, Reason.METRICS_UNAVAILABLE, text, 0, metric=rule.metric)
    if value > 0:
        text = f"{rule.metric} = {value:g} at zero replicas: activating one"
        return Decision(1, Reason.ACTIVATION, text, 0, metric=rule.metric)
    text = f"{rule.metric} = 0: idle at zero replicas"
    return Decision(0, Reason.IDLE, text, 0, metric=rule.metric)


def to_zero(rule: ZeroRule, decision: Decision, idle_since: float | None, now: float) -> Decision:
    """``decision`` (the engine's, at 1 replica or more), or 0 when the target has been
    idle long enough at 1. Through 1 only: a larger target first comes down by the
    rules, so the scale-down windows and rate limits keep their say."""
    if decision.current != 1 or decision.replicas != 1 or idle_since is None:
        return decision
    if now - idle_since < rule.idle_seconds:
        return decision
    text = f"{rule.metric} read 0 for {now - idle_since:g} s (idleSeconds {rule.idle_seconds:g})"
    return Decision(
        0,
        Reason.SCALED_TO_ZERO,
        text,
        decision.current,
        decision.recommendation,
        decision.stabilized,
        rule.metric,
        decision.proposals,
    )
