"""Decisions made around the engine: manual control, another autoscaler, fallback.

Pure functions of what was observed; each returns a ``Decision`` with a reason from
the same closed set as the engine's, so logs, metrics, dashboards and the
simulator's timeline treat them alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scaler.policy.decision import Decision, Reason

# Annotations on the Deployment that a person sets to take manual control.
PAUSE_ANNOTATION = "scaler.example.com/paused"
"""``"true"``: leave this Deployment alone until the annotation is removed."""
PIN_ANNOTATION = "scaler.example.com/pinned-replicas"
"""A whole number: hold the Deployment at exactly this many replicas."""

_TRUE = {"true", "yes", "1", "on"}


@dataclass(frozen=True, slots=True)
class Fallback:
    """Hold at least ``replicas`` after ``failure_threshold`` polls in a row without
    any metric (the configuration's ``fallback``)."""

    replicas: int
    failure_threshold: int


def manual_control(annotations: Mapping[str, str], current: int) -> Decision | None:
    """A pause or a pin set on the Deployment, honoured on this very tick.

    Paused: hold whatever runs. Pinned: exactly that many replicas, outside
    min/max too, because a person asked for it. A pin that is not a whole number
    holds the current count and says why, rather than guessing.
    """
    if not annotations:
        return None
    if annotations.get(PAUSE_ANNOTATION, "").strip().lower() in _TRUE:
        text = f"paused by the annotation {PAUSE_ANNOTATION}; holding {current}"
        return Decision(current, Reason.PAUSED, text, current)
    pin = annotations.get(PIN_ANNOTATION)
    if pin is None:
        return None
    if not pin.strip().isdigit():
        text = f"{PIN_ANNOTATION}={pin!r} is not a whole number; holding {current}"
        return Decision(current, Reason.PINNED, text, current)
    replicas = int(pin)
    return Decision(replicas, Reason.PINNED, f"pinned to {replicas} by {PIN_ANNOTATION}", current)


def hpa_conflict(hpa: str | None, current: int) -> Decision | None:
    """Another autoscaler owns this Deployment: never fight it."""
    if hpa is None:
        return None
    text = f"the HorizontalPodAutoscaler {hpa} already scales this Deployment; not acting"
    return Decision(current, Reason.HPA_CONFLICT, text, current)


def with_fallback(decision: Decision, *, failures: int, fallback: Fallback | None) -> Decision:
    """After ``failure_threshold`` polls in a row without any metric, hold at least
    the fallback replica count.

    Unlike KEDA's fallback (kedacore/keda#4249), this is a floor applied to the hold
    decision, not a fake metric value fed back into the rules, so it cannot
    oscillate between the fallback and the minimum while the metrics stay down, and it
    never removes replicas. When a metric comes back, the engine's rules take over.
    """
    if fallback is None or decision.reason is not Reason.METRICS_UNAVAILABLE:
        return decision
    if failures < fallback.failure_threshold:
        return decision
    replicas = max(decision.current, fallback.replicas)
    text = (
        f"no metric for {failures} polls in a row (threshold {fallback.failure_threshold}); "
        f"holding at least the fallback of {fallback.replicas}"
    )
    return Decision(replicas, Reason.FALLBACK, text, decision.current, proposals=decision.proposals)
