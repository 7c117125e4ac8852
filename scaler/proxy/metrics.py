"""The proxy's metrics: the queue the controller scales on, and what Ollama served.

Labels stay bounded: ``path`` is one of the known Ollama paths or ``other``, ``code``
an HTTP status, ``model`` only from answers Ollama completed (installed models). No
prompts, no pod names: Prometheus adds the pod's labels at scrape time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scaler.proxy.admission import Admission
from scaler.proxy.routes import INFERENCE_PATHS, OTHER, path_label

CLIENT_CLOSED = 499
"""The ``code`` of a request whose client left before its answer was complete (while
its body arrived, in the queue, or streaming): nginx's "client closed request"."""


_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_LONG = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


@dataclass(frozen=True, slots=True)
class PathSeries:
    """One inference path's histograms, bound to their label."""

    queue_wait: Histogram
    time_to_first_token: Histogram
    duration: Histogram


@dataclass(frozen=True, slots=True)
class ProxyMetrics:
    """The metric families, and their series bound once per label value: ``labels()``
    takes a lock and builds a key on every call, a cost paid per request otherwise.
    The caches hold only bounded label values (paths, statuses, installed models)."""

    requests: Counter
    rejected: Counter
    upstream_errors: Counter
    queue_wait: Histogram
    time_to_first_token: Histogram
    duration: Histogram
    generated_tokens: Counter
    prompt_tokens: Counter
    model_load: Histogram
    _paths: dict[str, PathSeries] = field(default_factory=dict)
    _counts: dict[tuple[str, int], Counter] = field(default_factory=dict)
    _tokens: dict[str, tuple[Counter, Counter]] = field(default_factory=dict)

    def path(self, path: str) -> PathSeries:
        """The histograms of an inference request's path: one of ``INFERENCE_PATHS``,
        or ``other`` (an unknown path whose body named a model)."""
        label = path_label(path)
        series = self._paths.get(label)
        if series is None:
            series = PathSeries(
                self.queue_wait.labels(label),
                self.time_to_first_token.labels(label),
                self.duration.labels(label),
            )
            self._paths[label] = series
        return series

    def count(self, path: str, status: int) -> None:
        """One request answered: ``requests_total{path, code}``."""
        key = (path_label(path), status)
        counter = self._counts.get(key)
        if counter is None:
            counter = self._counts[key] = self.requests.labels(key[0], str(status))
        counter.inc()

    def tokens(self, model: str) -> tuple[Counter, Counter]:
        """``generated_tokens_total`` and ``prompt_tokens_total`` of ``model``."""
        pair = self._tokens.get(model)
        if pair is None:
            pair = self.generated_tokens.labels(model), self.prompt_tokens.labels(model)
            self._tokens[model] = pair
        return pair


def build_metrics(registry: CollectorRegistry, admission: Admission) -> ProxyMetrics:
    """Create the metrics on ``registry``; the two gauges read ``admission`` live."""
    queue = Gauge(
        "ollama_proxy_queue_depth", "Requests waiting for a slot in the proxy.", registry=registry
    )
    queue.set_function(lambda: admission.queued)
    in_flight = Gauge(
        "ollama_proxy_requests_in_flight",
        "Inference requests holding one of Ollama's slots.",
        registry=registry,
    )
    in_flight.set_function(lambda: admission.active)
    slots = Gauge("ollama_proxy_slots", "OLLAMA_NUM_PARALLEL as configured.", registry=registry)
    slots.set(admission.parallel)
    metrics = ProxyMetrics(
        requests=Counter(
            "ollama_proxy_requests_total",
            "Requests by path and status code.",
            ("path", "code"),
            registry=registry,
        ),
        rejected=Counter(
            "ollama_proxy_rejected_total",
            "Inference requests refused with 503: the queue was full, or the proxy is draining.",
            ("path",),
            registry=registry,
        ),
        upstream_errors=Counter(
            "ollama_proxy_upstream_errors_total",
            "Failures talking to Ollama, by kind (connect, mid_stream).",
            ("kind",),
            registry=registry,
        ),
        queue_wait=Histogram(
            "ollama_proxy_queue_wait_seconds",
            "Time inference requests waited for a slot.",
            ("path",),
            buckets=_LONG,
            registry=registry,
        ),
        time_to_first_token=Histogram(
            "ollama_proxy_time_to_first_token_seconds",
            "From holding a slot to Ollama's first byte (load, prefill, first token).",
            ("path",),
            buckets=_LATENCY,
            registry=registry,
        ),
        duration=Histogram(
            "ollama_proxy_request_duration_seconds",
            "Whole inference requests, queue wait included.",
            ("path",),
            buckets=_LONG,
            registry=registry,
        ),
        generated_tokens=Counter(
            "ollama_proxy_generated_tokens_total",
            "Tokens Ollama generated (eval_count of final chunks).",
            ("model",),
            registry=registry,
        ),
        prompt_tokens=Counter(
            "ollama_proxy_prompt_tokens_total",
            "Prompt tokens Ollama evaluated (prompt_eval_count of final chunks).",
            ("model",),
            registry=registry,
        ),
        model_load=Histogram(
            "ollama_proxy_model_load_seconds",
            "Model load time Ollama reported (load_duration), when it loaded one.",
            ("model",),
            buckets=_LONG,
            registry=registry,
        ),
    )
    for path in (*INFERENCE_PATHS, OTHER):
        metrics.rejected.labels(path)
    for kind in ("connect", "mid_stream"):
        metrics.upstream_errors.labels(kind)
    return metrics
