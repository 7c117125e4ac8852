"""One target's reconcile: read, decide, act, export, log. Called once per poll.

Every failure below is caught here, counted, logged once and turned into a safe
decision (hold), so one target's trouble never stops the loop or the other targets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from scaler.config import Mode, ScalerConfig, TargetConfig
from scaler.controller.capacity import report_unschedulable, unschedulable
from scaler.controller.metrics import ControllerMetrics
from scaler.controller.reading import Reader
from scaler.controller.victims import VictimMarker, report
from scaler.kube.errors import KubeError
from scaler.kube.workload import Actuator, Workload
from scaler.logs import FIELDS
from scaler.policy import (
    Decision,
    History,
    MetricProposal,
    MetricReading,
    Observation,
    Pod,
    Reason,
    Seen,
    StepState,
    TargetSpec,
    format_milli,
    record_scaled,
    step,
)

log = logging.getLogger("scaler.controller")


@dataclass(slots=True)
class TargetState:
    """What one target remembers between polls: the policy's state (``step``), and
    what was reported, so that each change is logged once."""

    step: StepState = field(default_factory=StepState)
    conflict_reported: bool = False
    last_reason: Reason | None = None
    marking_failed: bool = False  # the last marking of victims failed (logged once)
    unschedulable: int = 0  # pods no node could take at the last observe (logged on change)

    @property
    def history(self) -> History:
        return self.step.history


class TargetReconciler:
    """Reads one Deployment's metrics and state, decides, and scales it if allowed."""

    def __init__(
        self,
        target: TargetConfig,
        *,
        config: ScalerConfig,
        readers: Mapping[str, Reader],
        actuator: Actuator,
        metrics: ControllerMetrics,
        is_leader: Callable[[], bool],
        victims: VictimMarker | None = None,
    ) -> None:
        self.target = target
        self.victims = victims
        self.config = config
        self.actuator = actuator
        self.metrics = metrics
        self.is_leader = is_leader
        self.spec: TargetSpec = config.step_spec(target)
        self.state = TargetState()
        self.labels = (target.namespace, target.deployment)
        # One reader per metric, in the target's order (see scaler.controller.reading).
        self.readers = [readers[metric.name] for metric in target.metrics]
        # The serving pods' IPs at the last observe: the next poll reads their proxies
        # (the reads run beside the observe, so the first poll has none).
        self.ready_ips: tuple[str, ...] = ()

    @property
    def poll_interval(self) -> float:
        return self.target.poll_interval or self.config.poll_interval

    async def reconcile(self, now: float, *, trigger: str = "poll") -> Decision | None:
        """One decision at ``now`` (unix seconds), started by ``trigger`` ("poll", or
        "push": a router's queue changed). Returns the decision, or None when the
        Deployment could not be read (nothing to decide from)."""
        readings_task = asyncio.gather(*(r.read(now, self.ready_ips) for r in self.readers))
        try:
            workload = await self.actuator.observe(self.target.namespace, self.target.deployment)
        except KubeError as error:
            readings_task.cancel()
            await asyncio.gather(readings_task, return_exceptions=True)
            self.metrics.kube_errors.labels("observe").inc()
            log.warning(
                "cannot read the Deployment: %s",
                error,
                extra={FIELDS: {"target": self.target.key}},
            )
            return None
        readings = dict(
            zip((m.name for m in self.target.metrics), await readings_task, strict=True)
        )
        self.ready_ips = tuple(
            workload.pod_ips[pod.name]
            for pod in workload.pods
            if _serving(pod) and pod.name in workload.pod_ips
        )
        decision = self._decide(workload, readings, now)
        action = await self._act(decision, workload, now)
        self._export(workload, decision, now)
        self.metrics.decisions_by_trigger.labels(*self.labels, trigger).inc()
        self._log(decision, action, trigger)
        return decision

    def _decide(
        self, workload: Workload, readings: dict[str, MetricReading], now: float
    ) -> Decision:
        observation = Observation(
            spec_replicas=workload.spec_replicas,
            status_replicas=workload.status_replicas,
            pods=workload.pods,
            readings=readings,
        )
        seen = Seen(observation, workload.annotations, workload.conflicting_hpa)
        decision, self.state.step = step(self.spec, self.state.step, seen, now)
        return decision

    async def _act(self, decision: Decision, workload: Workload, now: float) -> str:
        """Patch the scale if this replica may; say what was done."""
        if decision.reason is Reason.HPA_CONFLICT:
            await self._report_conflict(decision)
            return "stand_by"
        self.state.conflict_reported = False
        if not decision.changes_scale:
            return "hold"
        if self.config.mode is Mode.SHADOW:
            return "shadow"
        if not self.is_leader():
            return "not_leader"
        direction = "up" if decision.replicas > decision.current else "down"
        namespace, deployment = self.labels
        if direction == "down":
            await self._mark_victims(workload, now)
        try:
            await self.actuator.scale(namespace, deployment, decision.replicas)
        except KubeError as error:
            self.metrics.scale_operations.labels(*self.labels, direction, "error").inc()
            self.metrics.kube_errors.labels("scale").inc()
            log.error(
                "cannot scale to %d: %s",
                decision.replicas,
                error,
                extra={FIELDS: {"target": self.target.key}},
            )
            return "scale_failed"
        self.metrics.scale_operations.labels(*self.labels, direction, "success").inc()
        # Upstream stores a scale event only after a successful update.
        self.state.step = record_scaled(self.spec, self.state.step, decision, now)
        await self._event(
            "SuccessfulRescale", f"New size: {decision.replicas}; reason: {decision.message}"
        )
        return "scaled"

    async def _mark_victims(self, workload: Workload, now: float) -> None:
        """Deletion costs from each pod's load; a failure never stops the scale-down
        (see ``scaler.controller.victims``)."""
        if self.victims is None:
            return
        marked = await self.victims.mark(self.target.namespace, workload, now=now)
        if marked.error is not None:
            self.metrics.kube_errors.labels("annotate").inc()
        self.state.marking_failed = report(
            marked, failed_before=self.state.marking_failed, target=self.target.key
        )

    async def _report_conflict(self, decision: Decision) -> None:
        if self.state.conflict_reported:
            return
        self.state.conflict_reported = True
        log.warning(decision.text, extra={FIELDS: {"target": self.target.key}})
        await self._event("HPAConflict", decision.text, warning=True)

    async def _event(self, reason: str, message: str, *, warning: bool = False) -> None:
        namespace, deployment = self.labels
        try:
            await self.actuator.event(
                namespace, deployment, reason=reason, message=message, warning=warning
            )
        except KubeError as error:  # an Event is a courtesy; never fail a decision on it
            self.metrics.kube_errors.labels("event").inc()
            log.info(
                "cannot record an Event: %s", error, extra={FIELDS: {"target": self.target.key}}
            )

    def _export(self, workload: Workload, decision: Decision, now: float) -> None:
        m, labels = self.metrics, self.labels
        m.desired_replicas.labels(*labels).set(decision.replicas)
        m.current_replicas.labels(*labels).set(workload.spec_replicas)
        ready = sum(1 for pod in workload.pods if _serving(pod))
        stuck = unschedulable(workload.pods)
        m.pods.labels(*labels, "ready").set(ready)
        m.pods.labels(*labels, "starting").set(
            sum(1 for pod in workload.pods if not pod.deleting) - ready - len(stuck)
        )
        m.pods_unschedulable.labels(*labels).set(len(stuck))
        self.state.unschedulable = report_unschedulable(
            stuck, before=self.state.unschedulable, target=self.target.key
        )
        if decision.recommendation is not None:
            m.recommended_replicas.labels(*labels).set(decision.recommendation)
        for proposal in decision.proposals:
            if proposal.value is not None:
                m.metric_value.labels(*labels, proposal.name).set(proposal.value)
            if proposal.average_value is not None:
                average = proposal.average_value / 1000  # milli-units to the metric's unit
                m.metric_average_value.labels(*labels, proposal.name).set(average)
            if proposal.replicas is not None:
                m.metric_replicas.labels(*labels, proposal.name).set(proposal.replicas)
        m.decisions.labels(*labels, decision.reason.value).inc()
        previous = self.state.last_reason
        if previous is not decision.reason:
            if previous is not None:
                m.decision_reason.labels(*labels, previous.value).set(0)
            m.decision_reason.labels(*labels, decision.reason.value).set(1)
            self.state.last_reason = decision.reason
        state = self.state.step
        m.consecutive_failures.labels(*labels).set(state.failures)
        if state.last_good_poll is not None:
            m.last_good_poll.labels(*labels).set(state.last_good_poll)
        m.hpa_conflict.labels(*labels).set(workload.conflicting_hpa is not None)

    def _log(self, decision: Decision, action: str, trigger: str) -> None:
        fields = {
            "target": self.target.key,
            "trigger": trigger,
            "action": action,
            "replicas": decision.replicas,
            "current": decision.current,
            "recommendation": decision.recommendation,
            "reason": decision.reason.value,
            "metrics": {p.name: _metric_fields(p) for p in decision.proposals},
            "mode": self.config.mode.value,
            "leader": self.is_leader(),
        }
        level = logging.INFO
        if decision.reason in (Reason.METRICS_UNAVAILABLE, Reason.FALLBACK):
            level = logging.WARNING
        log.log(level, decision.message, extra={FIELDS: fields})


def _metric_fields(p: MetricProposal) -> dict[str, object]:
    """One metric in the decision log; ``average_value`` as the HPA's quantity text,
    exact at any size (e.g. "1500m", "9223372036854775807m")."""
    if p.error is not None:
        return {"error": p.error}
    fields: dict[str, object] = {"value": p.value, "target": p.target, "replicas": p.replicas}
    if p.average_value is not None:
        fields["average_value"] = format_milli(p.average_value)
    return fields


def _serving(pod: Pod) -> bool:
    """Running, ready and not being deleted: a pod the Service sends requests to."""
    return pod.is_running_and_ready and not pod.deleting
