"""One target's poll, whole: the overrides, the engine and the fallback, in order.

The controller, the simulator, the timeline tests and the benchmark all call
``step`` for a decision and, once a scale change has really been made,
``record_scaled``; so "simulate and the live loop decide alike" holds by code.
Pure, like the engine: the caller passes ``now`` and keeps the returned state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from scaler.policy.decision import Decision, MetricProposal, Reason
from scaler.policy.engine import Observation, PolicySpec, decide, record_scale, remember
from scaler.policy.history import History
from scaler.policy.overrides import Fallback, hpa_conflict, manual_control, with_fallback
from scaler.policy.readings import MetricReading, Unavailable
from scaler.policy.zero import ZeroRule, at_zero, idle_clock, to_zero, zero_value


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """What stays fixed for one target between polls.

    ``policy``: the engine's spec. ``fallback``: the floor for a metric outage, if
    any. ``yield_to_hpa``: an HPA targeting the Deployment makes us stand by; false
    in shadow mode, where nothing is patched and the HPA beside us is the point.
    ``zero``: the scale-to-zero rule of a target whose minimum is 0 (``policy``'s
    minimum is then 1: the engine never sees 0).
    """

    policy: PolicySpec
    fallback: Fallback | None = None
    yield_to_hpa: bool = True
    zero: ZeroRule | None = None


class StepState(NamedTuple):
    """What one target remembers between polls.

    ``failures``: polls in a row in which no metric could be read.
    ``last_good_poll``: when a metric was last read (``None``: never).
    ``idle_since``: since when the scale-to-zero metric has read 0 at every poll
    (``None``: it did not at the last poll, or the target has no such rule).

    A named tuple, as ``Seen``: one of each is made at every poll (the simulator
    makes hundreds of thousands), and tuples are built fastest.
    """

    history: History = History()
    failures: int = 0
    last_good_poll: float | None = None
    idle_since: float | None = None


class Seen(NamedTuple):
    """The target at one poll: its scale, pods and readings (``observation``), the
    Deployment's annotations (pause, pin) and the HPA targeting it, if any."""

    observation: Observation
    annotations: Mapping[str, str] = MappingProxyType({})
    conflicting_hpa: str | None = None


def step(
    spec: TargetSpec,
    state: StepState,
    seen: Seen,
    now: float,
    *,
    proposals: tuple[MetricProposal, ...] | None = None,
    unread: bool | None = None,
) -> tuple[Decision, StepState]:
    """Decide at ``now``; return the decision and the new state.

    Order: an HPA conflict, then a pause or a pin, win over the rules; then, for a
    target that scales to zero, the rules at 0 (``zero.at_zero``); otherwise the
    engine decides, the fallback floor applies to its hold, and an idle target at 1
    may go to 0 (``zero.to_zero``). Failures are counted
    on every poll, overridden or not, so a pause lifted during an outage finds the
    count it would have had.

    ``proposals``: passed on to ``decide`` (the simulator's memoized proposals);
    ``unread``: whether no metric could be read this poll, worked out from
    ``seen.observation.readings`` when omitted (a caller passing ``proposals``
    says it, since the readings are then not given). A target with a ``zero`` rule
    reads that metric from the readings even then: pass it there.
    """
    observation = seen.observation
    if unread is None:
        unread = _unread(spec.policy, observation.readings)
    if unread:
        failures, last_good = state.failures + 1, state.last_good_poll
    else:
        failures, last_good = 0, now
    current = observation.spec_replicas
    zero, idle_since, value = spec.zero, None, None
    if zero is not None:
        value = zero_value(zero, observation.readings)
        idle_since = idle_clock(value, state.idle_since, now)
    override = None
    if seen.conflicting_hpa is not None and spec.yield_to_hpa:
        override = hpa_conflict(seen.conflicting_hpa, current)
    elif seen.annotations:
        override = manual_control(seen.annotations, current)
    if override is not None:
        return override, StepState(state.history, failures, last_good, idle_since)
    if zero is not None and current == 0:
        return at_zero(zero, value), StepState(state.history, failures, last_good, idle_since)
    decision, history = decide(spec.policy, observation, state.history, now, proposals=proposals)
    if spec.fallback is not None and decision.reason is Reason.METRICS_UNAVAILABLE:
        decision = with_fallback(decision, failures=failures, fallback=spec.fallback)
        if decision.reason is Reason.FALLBACK:
            # Remembered like any recommendation: after the outage, the scale-down
            # window holds the fallback count before the rules bring it down.
            history = remember(history, spec.policy.behavior, decision.replicas, now)
    if zero is not None:
        decision = to_zero(zero, decision, idle_since, now)
    return decision, StepState(history, failures, last_good, idle_since)


def record_scaled(spec: TargetSpec, state: StepState, decision: Decision, now: float) -> StepState:
    """The scale was changed from ``decision.current`` to ``decision.replicas`` at
    ``now``: call only after the change succeeded (upstream stores a scale event
    only after a successful update, so a failed patch must not count)."""
    history = record_scale(
        state.history, spec.policy.behavior, decision.current, decision.replicas, now
    )
    return StepState(history, state.failures, state.last_good_poll, state.idle_since)


def _unread(policy: PolicySpec, readings: Mapping[str, MetricReading]) -> bool:
    """No metric could be read: every reading is ``Unavailable`` or missing (a
    missing reading counts as unavailable, as in ``decide``)."""
    for metric in policy.metrics:
        reading = readings.get(metric.name)
        if reading is not None and not isinstance(reading, Unavailable):
            return False
    return True
