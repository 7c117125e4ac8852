"""A steerable metrics exporter for tests: a real aiohttp ``/metrics`` on 127.0.0.1.

    with running_exporter() as exporter:
        exporter.set_queue_depth("ollama-0", 3, namespace="team-a")
        job = scrape_job("exporter", exporter.target)
        ...                                   # Prometheus scrapes and follows each step

It exposes the series the controller reads, with the labels they carry in a cluster:

- ``ollama_proxy_queue_depth{namespace,pod}``: requests waiting in the proxy (gauge).
- ``ollama_proxy_requests_in_flight{namespace,pod}``: requests at Ollama (gauge).
- ``container_cpu_usage_seconds_total{namespace,pod,container}``: CPU seconds, as
  cAdvisor exports them (counter; ``set_cpu_seconds`` can also reset it).

The server runs on its own event loop in a daemon thread (``ThreadedServer``), so one
exporter can outlive the per-test event loops of pytest-asyncio and serve a whole
session. The setters are plain methods, safe to call from any thread or loop, and take
effect at the next scrape.
Values are served by ``prometheus_client.aiohttp.make_aiohttp_handler`` from a private
registry, so they never mix with a process-global ``REGISTRY``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tests.support.threaded_server import ThreadedServer

QUEUE_DEPTH: Final = "ollama_proxy_queue_depth"
IN_FLIGHT: Final = "ollama_proxy_requests_in_flight"
CPU_SECONDS: Final = "container_cpu_usage_seconds"
"""Counter family name; exposed as ``container_cpu_usage_seconds_total``."""

_POD_LABELS = ("namespace", "pod")
_CPU_LABELS = ("namespace", "pod", "container")
_HELP = {
    QUEUE_DEPTH: "Requests waiting in the proxy queue.",
    IN_FLIGHT: "Requests being served by Ollama.",
    CPU_SECONDS: "Cumulative CPU time consumed, seconds.",
}


class _Values(Collector):
    """The current values, keyed by family and label values; read at each scrape."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.series: dict[str, dict[tuple[str, ...], float]] = {
            QUEUE_DEPTH: {},
            IN_FLIGHT: {},
            CPU_SECONDS: {},
        }

    def collect(self) -> Iterable[Metric]:
        with self.lock:
            snapshot = {name: dict(series) for name, series in self.series.items()}
        for name in (QUEUE_DEPTH, IN_FLIGHT):
            gauge = GaugeMetricFamily(name, _HELP[name], labels=_POD_LABELS)
            for labels, value in snapshot[name].items():
                gauge.add_metric(labels, value)
            yield gauge
        counter = CounterMetricFamily(CPU_SECONDS, _HELP[CPU_SECONDS], labels=_CPU_LABELS)
        for labels, value in snapshot[CPU_SECONDS].items():
            counter.add_metric(labels, value)
        yield counter


class Exporter:
    """The running exporter. ``url`` is ``http://127.0.0.1:PORT``; ``target`` is what a
    scrape config lists (``127.0.0.1:PORT``); ``scrapes`` counts ``/metrics`` requests."""

    def __init__(self) -> None:
        self._values = _Values()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self._values)
        self._scrapes = 0
        self._server = ThreadedServer(self._app)

    @property
    def port(self) -> int:
        if not self._server.running:
            raise RuntimeError("the exporter is not running")
        return self._server.port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}"

    @property
    def scrapes(self) -> int:
        return self._scrapes

    def set_queue_depth(self, pod: str, value: float, *, namespace: str = "default") -> None:
        """Requests waiting in ``pod``'s proxy (NaN and infinities are exported as such)."""
        self._set(QUEUE_DEPTH, (namespace, pod), value)

    def set_in_flight(self, pod: str, value: float, *, namespace: str = "default") -> None:
        """Requests ``pod``'s Ollama is serving."""
        self._set(IN_FLIGHT, (namespace, pod), value)

    def set_cpu_seconds(
        self, pod: str, total: float, *, namespace: str = "default", container: str = "ollama"
    ) -> None:
        """The counter's total, in CPU seconds; a lower value than before is a reset."""
        self._set(CPU_SECONDS, (namespace, pod, container), total)

    def add_cpu_seconds(
        self, pod: str, seconds: float, *, namespace: str = "default", container: str = "ollama"
    ) -> None:
        """Advance the counter by ``seconds`` of CPU time (e.g. 2 cores for 1 s: 2.0)."""
        key = (namespace, pod, container)
        with self._values.lock:
            series = self._values.series[CPU_SECONDS]
            series[key] = series.get(key, 0.0) + seconds

    def remove_pod(self, pod: str, *, namespace: str = "default") -> None:
        """Stop exporting every series of ``pod``; Prometheus marks them stale at the
        next scrape, so instant queries stop returning them at once."""
        self._remove(lambda key: key[0] == namespace and key[1] == pod)

    def remove_namespace(self, namespace: str) -> None:
        """Stop exporting every series in ``namespace``."""
        self._remove(lambda key: key[0] == namespace)

    def start(self) -> None:
        """Listen on a free loopback port; returns once it does."""
        self._server.start()

    def stop(self) -> None:
        """Close the server and join its thread."""
        self._server.close()

    def _set(self, name: str, key: tuple[str, ...], value: float) -> None:
        with self._values.lock:
            self._values.series[name][key] = float(value)

    def _remove(self, matches: Callable[[tuple[str, ...]], bool]) -> None:
        with self._values.lock:
            for series in self._values.series.values():
                for key in [k for k in series if matches(k)]:
                    del series[key]

    def _app(self) -> web.Application:
        metrics = make_aiohttp_handler(self._registry)

        async def handle(request: web.Request) -> web.StreamResponse:
            self._scrapes += 1
            return await metrics(request)

        app = web.Application()
        app.router.add_get("/metrics", handle)
        return app


@contextmanager
def running_exporter() -> Iterator[Exporter]:
    """Start an ``Exporter``, yield it, stop it."""
    exporter = Exporter()
    exporter.start()
    try:
        yield exporter
    finally:
        exporter.stop()
