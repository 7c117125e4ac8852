"""The controller's own metrics, on a registry passed in (a fresh one per test).

Names follow Prometheus conventions: one ``scaler_`` prefix, base units, ``_total``
on counters, labels from bounded sets only (targets from the config, metric names
from the config, reasons and failure kinds from closed enums).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scaler.config import ScalerConfig
from scaler.policy import Reason
from scaler.sources.base import FAILURE_KINDS
from scaler.sources.router_push import PushStale

TRIGGERS = ("push", "poll")
READ_SOURCES = ("push", "direct", "prometheus")

TARGET = ("namespace", "deployment")
KUBE_OPERATIONS = ("observe", "scale", "event", "lease", "annotate")


@dataclass(frozen=True, slots=True)
class ControllerMetrics:
    desired_replicas: Gauge
    current_replicas: Gauge
    min_replicas: Gauge
    max_replicas: Gauge
    pods: Gauge
    pods_unschedulable: Gauge
    recommended_replicas: Gauge
    metric_value: Gauge
    metric_average_value: Gauge
    metric_target: Gauge
    metric_replicas: Gauge
    decisions: Counter
    decision_reason: Gauge
    decisions_by_trigger: Counter
    push_streams: Gauge
    push_errors: Counter
    scale_operations: Counter
    metric_errors: Counter
    metric_reads: Counter
    kube_errors: Counter
    poll_duration: Histogram
    last_good_poll: Gauge
    consecutive_failures: Gauge
    hpa_conflict: Gauge
    leader: Gauge
    shadow_mode: Gauge


def build_metrics(registry: CollectorRegistry, config: ScalerConfig) -> ControllerMetrics:
    """Create every metric on ``registry`` and pre-create the known label sets."""

    def gauge(name: str, doc: str, labels: tuple[str, ...] = TARGET) -> Gauge:
        return Gauge(name, doc, labels, registry=registry)

    metrics = ControllerMetrics(
        desired_replicas=gauge("scaler_desired_replicas", "Replicas the last decision chose."),
        current_replicas=gauge(
            "scaler_current_replicas", "spec.replicas of the Deployment when last observed."
        ),
        min_replicas=gauge("scaler_min_replicas", "The target's minReplicas."),
        max_replicas=gauge("scaler_max_replicas", "The target's maxReplicas."),
        pods=gauge("scaler_pods", "Pods of the Deployment by state.", (*TARGET, "state")),
        pods_unschedulable=gauge(
            "scaler_pods_unschedulable",
            "Pods of the Deployment no node can take (PodScheduled False, Unschedulable).",
        ),
        recommended_replicas=gauge(
            "scaler_recommended_replicas",
            "What the metrics asked for, before stabilization and rate limits.",
        ),
        metric_value=gauge(
            "scaler_metric_value",
            "Each metric's current value in its target's units.",
            (*TARGET, "metric"),
        ),
        metric_average_value=gauge(
            "scaler_metric_average_value",
            "Each metric's raw average per pod in its own unit, as the HPA reports it in "
            "currentMetrics (averageValue, beside a Utilization's percent; an External "
            "Value target's value).",
            (*TARGET, "metric"),
        ),
        metric_target=gauge(
            "scaler_metric_target", "Each metric's target value.", (*TARGET, "metric")
        ),
        metric_replicas=gauge(
            "scaler_metric_recommended_replicas",
            "Replicas each metric proposed.",
            (*TARGET, "metric"),
        ),
        decisions=Counter(
            "scaler_decisions_total", "Decisions by reason.", (*TARGET, "reason"), registry=registry
        ),
        decision_reason=gauge(
            "scaler_decision_reason", "1 for the reason of the last decision.", (*TARGET, "reason")
        ),
        decisions_by_trigger=Counter(
            "scaler_decisions_by_trigger_total",
            "Decisions by what started them: a pushed queue change, or the poll.",
            (*TARGET, "trigger"),
            registry=registry,
        ),
        push_streams=gauge(
            "scaler_push_streams",
            "Routers' queue streams live now (one per router of a pushed metric).",
            (*TARGET, "metric"),
        ),
        push_errors=Counter(
            "scaler_push_errors_total",
            "Failed or broken routers' queue streams by kind.",
            (*TARGET, "metric", "kind"),
            registry=registry,
        ),
        scale_operations=Counter(
            "scaler_scale_operations_total",
            "Patches of the scale subresource by direction and result.",
            (*TARGET, "direction", "result"),
            registry=registry,
        ),
        metric_errors=Counter(
            "scaler_metric_errors_total",
            "Failed metric reads by kind.",
            (*TARGET, "metric", "kind"),
            registry=registry,
        ),
        metric_reads=Counter(
            "scaler_metric_reads_total",
            "Successful metric reads by source: the routers' streams (push), the exporters "
            "directly, or Prometheus.",
            (*TARGET, "metric", "source"),
            registry=registry,
        ),
        kube_errors=Counter(
            "scaler_kubernetes_errors_total",
            "Failed Kubernetes API operations.",
            ("operation",),
            registry=registry,
        ),
        poll_duration=Histogram(
            "scaler_poll_duration_seconds",
            "Time to read every due target's metrics and state and act on them.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        ),
        last_good_poll=gauge(
            "scaler_last_good_poll_timestamp_seconds",
            "Unix time of the last poll where at least one metric was read.",
        ),
        consecutive_failures=gauge(
            "scaler_consecutive_failed_polls", "Polls in a row without any metric."
        ),
        hpa_conflict=gauge(
            "scaler_hpa_conflict", "1 while an HPA targets the Deployment and scaler stands by."
        ),
        leader=Gauge("scaler_leader", "1 while this replica holds the lease.", registry=registry),
        shadow_mode=Gauge(
            "scaler_shadow_mode",
            "1 when decisions are only logged and exported.",
            registry=registry,
        ),
    )
    _precreate(metrics, config)
    return metrics


def _precreate(metrics: ControllerMetrics, config: ScalerConfig) -> None:
    """Series exist from the start, so rate() and absent() behave (labels.md)."""
    metrics.shadow_mode.set(1 if config.mode.value == "shadow" else 0)
    for operation in KUBE_OPERATIONS:
        metrics.kube_errors.labels(operation)
    for target in config.targets:
        key = (target.namespace, target.deployment)
        metrics.min_replicas.labels(*key).set(target.min_replicas)
        metrics.max_replicas.labels(*key).set(target.max_replicas)
        metrics.hpa_conflict.labels(*key).set(0)
        metrics.consecutive_failures.labels(*key).set(0)
        metrics.pods_unschedulable.labels(*key).set(0)
        for state in ("ready", "starting"):
            metrics.pods.labels(*key, state)
        for trigger in TRIGGERS:
            metrics.decisions_by_trigger.labels(*key, trigger)
        for reason in Reason:
            metrics.decisions.labels(*key, reason.value)
            metrics.decision_reason.labels(*key, reason.value).set(0)
        for direction in ("up", "down"):
            for result in ("success", "error"):
                metrics.scale_operations.labels(*key, direction, result)
        specs = target.to_policy().metrics  # per pod: an AverageValue times the slots
        for metric, spec in zip(target.metrics, specs, strict=True):
            metrics.metric_target.labels(*key, metric.name).set(spec.target)
            for kind in (*FAILURE_KINDS, PushStale.kind):
                metrics.metric_errors.labels(*key, metric.name, kind)
            for source in READ_SOURCES:
                metrics.metric_reads.labels(*key, metric.name, source)
            if metric.direct is not None and metric.direct.pushed:
                metrics.push_streams.labels(*key, metric.name).set(0)
                for kind in (*FAILURE_KINDS, PushStale.kind):
                    metrics.push_errors.labels(*key, metric.name, kind)
