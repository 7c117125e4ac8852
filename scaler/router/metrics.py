"""The router's metrics: the shared queue the controller scales on, and the pods.

Labels stay bounded: ``path`` as in the proxy, ``reason``/``kind``/``state`` from
closed sets, ``pod`` only on the per-pod in-flight gauge, read from the pods known at
scrape time (at most the Deployment's replicas plus those draining), so a pod's series
ends with the pod.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scaler.proxy.routes import INFERENCE_PATHS, OTHER
from scaler.router.dispatch import Dispatcher
from scaler.router.watch import QueueWatch

REJECT_REASONS = ("queue_full", "no_ready_pod", "bad_request", "draining")
REDISPATCH_REASONS = ("slot_taken", "draining", "connect_failed")
UPSTREAM_ERRORS = ("connect", "mid_stream")

_LONG = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


@dataclass(frozen=True, slots=True)
class RouterMetrics:
    requests: Counter
    rejected: Counter
    redispatches: Counter
    upstream_errors: Counter
    queue_wait: Histogram
    time_to_first_byte: Histogram
    duration: Histogram


class _PodCollector(Collector):
    """Per-pod in-flight and pods by state, read from the dispatcher at scrape time."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    def collect(self) -> Iterator[GaugeMetricFamily]:
        per_pod = GaugeMetricFamily(
            "scaler_router_pod_requests_in_flight",
            "Requests this router has on each pod now.",
            labels=("pod",),
        )
        for key, pod in sorted(self._dispatcher.pods.items()):
            per_pod.add_metric((key,), pod.active)
        yield per_pod
        by_state = GaugeMetricFamily(
            "scaler_router_pods", "Ollama pods this router knows, by state.", labels=("state",)
        )
        for state, count in self._dispatcher.table.pods_by_state().items():
            by_state.add_metric((state.value,), count)
        yield by_state


def build_metrics(
    registry: CollectorRegistry, dispatcher: Dispatcher, watch: QueueWatch
) -> RouterMetrics:
    """Create the metrics on ``registry``; the gauges read ``dispatcher`` live."""
    Gauge(
        "scaler_router_queue_depth",
        "Requests waiting in this router's shared queue for a free slot on any pod.",
        registry=registry,
    ).set_function(lambda: dispatcher.queued)
    Gauge(
        "scaler_router_requests_in_flight",
        "Requests this router has bound to a pod's slot and not finished.",
        registry=registry,
    ).set_function(lambda: dispatcher.in_flight)
    Gauge(
        "scaler_router_queue_subscribers",
        "Open queue streams (GET /scaler/v1/queue/watch), the controllers' push.",
        registry=registry,
    ).set_function(lambda: watch.subscribers)
    Gauge("scaler_router_slots", "Slots per pod (--parallel).", registry=registry).set(
        dispatcher.parallel
    )
    registry.register(_PodCollector(dispatcher))
    metrics = RouterMetrics(
        requests=Counter(
            "scaler_router_requests_total",
            "Requests by path and status code.",
            ("path", "code"),
            registry=registry,
        ),
        rejected=Counter(
            "scaler_router_rejected_total",
            "Inference requests refused at the router, by reason.",
            ("reason",),
            registry=registry,
        ),
        redispatches=Counter(
            "scaler_router_redispatches_total",
            "Requests sent back to the head of the queue, by reason.",
            ("reason",),
            registry=registry,
        ),
        upstream_errors=Counter(
            "scaler_router_upstream_errors_total",
            "Failures talking to the pods, by kind (connect, mid_stream).",
            ("kind",),
            registry=registry,
        ),
        queue_wait=Histogram(
            "scaler_router_queue_wait_seconds",
            "Time inference requests waited in the shared queue for a slot.",
            ("path",),
            buckets=_LONG,
            registry=registry,
        ),
        time_to_first_byte=Histogram(
            "scaler_router_time_to_first_byte_seconds",
            "From arrival at the router to the answer's first byte (queue included).",
            ("path",),
            buckets=_LONG,
            registry=registry,
        ),
        duration=Histogram(
            "scaler_router_request_duration_seconds",
            "Whole inference requests, queue wait included.",
            ("path",),
            buckets=_LONG,
            registry=registry,
        ),
    )
    for reason in REJECT_REASONS:
        metrics.rejected.labels(reason)
    for reason in REDISPATCH_REASONS:
        metrics.redispatches.labels(reason)
    for kind in UPSTREAM_ERRORS:
        metrics.upstream_errors.labels(kind)
    for path in (*INFERENCE_PATHS, OTHER):
        metrics.queue_wait.labels(path)
    return metrics
