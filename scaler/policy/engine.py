"""One decision for one target: the HPA's ``reconcileAutoscaler`` without the I/O.

``decide`` is a pure function of the spec, what was observed, the history and
``now``; it returns the decision and the new history. After the caller has actually
changed the scale, it records that with ``record_scale`` (upstream stores a scale
event only after a successful update, so a failed patch must not count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from scaler.policy.behavior import MISSION_BEHAVIOR, Behavior
from scaler.policy.calculator import CalculationError, Context, Tolerances, calculate
from scaler.policy.decision import Decision, MetricProposal, Reason
from scaler.policy.history import History, store_event
from scaler.policy.legacy import limit_legacy, stabilize_legacy
from scaler.policy.pods import (
    DEFAULT_CPU_INITIALIZATION_PERIOD,
    DEFAULT_INITIAL_READINESS_DELAY,
    Pod,
    grouping_valid_until,
)
from scaler.policy.rate import limit_by_rate
from scaler.policy.readings import MetricReading, MetricSpec, PodValues, SourceType, Unavailable
from scaler.policy.stabilization import Stabilized, stabilize


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """Everything that stays fixed between decisions for one target.

    ``min_replicas``/``max_replicas``: the range decisions are clamped to.
    ``cpu_initialization_period`` and ``initial_readiness_delay``: seconds, the
    kube-controller-manager flags that decide when a starting pod's CPU counts.
    """

    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    behavior: Behavior = MISSION_BEHAVIOR
    cpu_initialization_period: float = DEFAULT_CPU_INITIALIZATION_PERIOD
    initial_readiness_delay: float = DEFAULT_INITIAL_READINESS_DELAY

    @property
    def tolerances(self) -> Tolerances:
        return Tolerances(self.behavior.scale_down.tolerance, self.behavior.scale_up.tolerance)


@dataclass(frozen=True, slots=True)
class Observation:
    """The world at ``now``: the scale subresource, the pods, and each metric's reading.

    ``spec_replicas``: the replicas asked for (what the HPA calls current).
    ``status_replicas``: the replicas that exist (used by AverageValue of External).
    ``readings``: by metric name; a metric with no entry counts as unavailable.
    """

    spec_replicas: int
    status_replicas: int
    pods: tuple[Pod, ...] = ()
    readings: dict[str, MetricReading] = field(default_factory=dict)


def decide(
    spec: PolicySpec,
    observation: Observation,
    history: History,
    now: float,
    *,
    proposals: tuple[MetricProposal, ...] | None = None,
) -> tuple[Decision, History]:
    """Decide the replica count at ``now``; return it with the updated history.

    ``proposals``: what ``propose`` gives for this observation at ``now``, when the
    caller already has it (the simulator reuses a metric's proposal while its inputs
    and ``proposal_valid_until`` say it cannot differ); ``observation.readings`` is
    then not read. Omitted, they are computed from the readings.
    """
    current = observation.spec_replicas
    history = history.with_initial_recommendation(current, now)
    if current == 0 and spec.min_replicas != 0:
        message = "scaling is disabled since the replica count of the target is zero"
        return Decision(0, Reason.SCALING_DISABLED, message, current), history
    if current > spec.max_replicas:
        message = f"current replicas {current} above maxReplicas {spec.max_replicas}"
        return Decision(spec.max_replicas, Reason.CURRENT_ABOVE_MAX, message, current), history
    if current < spec.min_replicas:
        message = f"current replicas {current} below minReplicas {spec.min_replicas}"
        return Decision(spec.min_replicas, Reason.CURRENT_BELOW_MIN, message, current), history

    if proposals is None:
        proposals = propose(spec, observation, now)
    held = _hold_for_missing_metrics(proposals, current)
    if held is not None:
        return held, history
    winner = _winner(proposals)
    assert winner.replicas is not None  # _hold_for_missing_metrics rules out no winner
    desired = winner.replicas

    stabilized, (replicas, reason, message) = _normalize(spec, history, desired, current, now)
    history = History(
        stabilized.recommendations, history.scale_up_events, history.scale_down_events
    )
    if replicas == stabilized.replicas and stabilized.replicas != desired:
        reason, message = stabilized.reason, stabilized.message
    elif replicas == current == desired and winner.within_tolerance:
        reason = Reason.WITHIN_TOLERANCE
        message = "the usage ratio is within tolerance of the target"
    # Positional: the simulator makes hundreds of thousands of these.
    decision = Decision(
        replicas, reason, message, current, desired, stabilized.replicas, winner.name, proposals
    )
    return decision, history


def _normalize(
    spec: PolicySpec, history: History, desired: int, current: int, now: float
) -> tuple[Stabilized, tuple[int, Reason, str]]:
    """Stabilize, then limit: ``normalizeDesiredReplicasWithBehaviors``, or
    ``normalizeDesiredReplicas`` for a target without a behavior block."""
    behavior = spec.behavior
    if behavior.legacy:
        stabilized = stabilize_legacy(
            history.recommendations or (),
            desired=desired,
            window=behavior.scale_down.stabilization_window_seconds,
            now=now,
        )
        return stabilized, limit_legacy(
            desired=stabilized.replicas,
            current=current,
            min_replicas=spec.min_replicas,
            max_replicas=spec.max_replicas,
        )
    stabilized = _stabilize(history, behavior, desired, current, now)
    return stabilized, limit_by_rate(
        desired=stabilized.replicas,
        current=current,
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        behavior=behavior,
        up_events=history.scale_up_events,
        down_events=history.scale_down_events,
        now=now,
    )


def remember(history: History, behavior: Behavior, replicas: int, now: float) -> History:
    """Store ``replicas`` as the recommendation made at ``now``, as the stabilization
    step stores each unstabilized recommendation (overwriting an outdated one).

    For decisions made around the rules, such as the controller's fallback: once the
    metrics return, the scale-down window still remembers that count.
    """
    stored = _stabilize(history, behavior, replicas, replicas, now).recommendations
    return History(stored, history.scale_up_events, history.scale_down_events)


def record_scale(
    history: History, behavior: Behavior, previous: int, new: int, now: float
) -> History:
    """``storeScaleEvent``: remember a scale change that really happened at ``now``.

    Without a behavior block upstream stores nothing: the legacy path reads no events.
    """
    if behavior.legacy:
        return history
    if new > previous:
        events = store_event(
            history.scale_up_events,
            replica_change=new - previous,
            longest_policy_period=behavior.scale_up.longest_policy_period,
            now=now,
        )
        return replace(history, scale_up_events=events)
    if new < previous:
        events = store_event(
            history.scale_down_events,
            replica_change=previous - new,
            longest_policy_period=behavior.scale_down.longest_policy_period,
            now=now,
        )
        return replace(history, scale_down_events=events)
    return history


def _stabilize(
    history: History, behavior: Behavior, desired: int, current: int, now: float
) -> Stabilized:
    return stabilize(
        history.recommendations or (),
        desired=desired,
        current=current,
        scale_up_window=behavior.scale_up.stabilization_window_seconds,
        scale_down_window=behavior.scale_down.stabilization_window_seconds,
        now=now,
    )


def context(spec: PolicySpec, observation: Observation, now: float) -> Context:
    """What every metric's calculation sees besides its own reading."""
    return Context(
        spec_replicas=observation.spec_replicas,
        status_replicas=observation.status_replicas,
        pods=observation.pods,
        tolerances=spec.tolerances,
        now=now,
        cpu_initialization_period=spec.cpu_initialization_period,
        initial_readiness_delay=spec.initial_readiness_delay,
    )


def propose(spec: PolicySpec, observation: Observation, now: float) -> tuple[MetricProposal, ...]:
    """Each metric's proposal, in the spec's order (``computeReplicasForMetrics``)."""
    ctx = context(spec, observation, now)
    readings = observation.readings
    return tuple(propose_metric(metric, readings.get(metric.name), ctx) for metric in spec.metrics)


def propose_metric(
    metric: MetricSpec, reading: MetricReading | None, ctx: Context
) -> MetricProposal:
    """One metric's proposal; a missing reading counts as unavailable."""
    try:
        if reading is None:
            reading = Unavailable("no reading")
        result = calculate(metric, reading, ctx)
    except CalculationError as error:
        return MetricProposal(metric.name, None, None, metric.target, error=str(error))
    return MetricProposal(
        metric.name,
        result.replicas,
        result.value,
        metric.target,
        result.within_tolerance,
        average_value=result.average,
    )


def proposal_valid_until(metric: MetricSpec, reading: MetricReading | None, ctx: Context) -> float:
    """Until when (exclusive) ``propose_metric`` gives the same proposal for the same
    metric, reading, pods and replica counts, however late it is called.

    The calculation reads the clock in one place: ``groupPods`` puts a CPU pod in or
    past its CPU initialization period.
    """
    cpu = metric.source is SourceType.RESOURCE and metric.resource == "cpu"
    if not cpu or not isinstance(reading, PodValues):
        return math.inf
    return grouping_valid_until(
        ctx.pods,
        reading.samples,
        now=ctx.now,
        cpu_initialization_period=ctx.cpu_initialization_period,
    )


def _winner(proposals: tuple[MetricProposal, ...]) -> MetricProposal:
    """The largest proposal wins; the first metric wins a tie (upstream's loop order)."""
    best = None
    for proposal in proposals:
        replicas = proposal.replicas
        if replicas is not None and (best is None or replicas > (best.replicas or 0)):
            best = proposal
    assert best is not None, "called with at least one valid proposal"
    return best


def _hold_for_missing_metrics(
    proposals: tuple[MetricProposal, ...], current: int
) -> Decision | None:
    """``computeReplicasForMetrics``' rule: scale on the valid metrics unless all are
    invalid, or some are invalid and the valid ones would scale down."""
    if all(p.replicas is not None for p in proposals):
        return None
    invalid = [p for p in proposals if p.replicas is None]
    errors = "; ".join(f"{p.name}: {p.error}" for p in invalid)
    if len(invalid) >= len(proposals):
        message = f"holding at {current}: no metric is available ({errors})"
        return Decision(current, Reason.METRICS_UNAVAILABLE, message, current, proposals=proposals)
    top = _winner(proposals).replicas or 0
    if top < current:
        message = (
            f"holding at {current}: the available metrics propose {top}, but a scale-down "
            f"needs every metric ({len(invalid)} of {len(proposals)} invalid: {errors})"
        )
        return Decision(current, Reason.METRICS_INCOMPLETE, message, current, proposals=proposals)
    return None
