"""The proxy's request handlers (``Proxy``): admission for inference, pass-through
for everything else, the probes and the drain.

The app around them (route table, the upstream sessions and residency it owns, the
server's lifetime) is app.py: a reader looking for what one request goes through
starts here, one looking for what runs when starts there.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from scaler.proxy.admission import Admission, Draining, QueueFull
from scaler.proxy.body import BodiesFull, BodyBudget, BodyRefused, json_error, refuse
from scaler.proxy.drain import STOPPING, drain
from scaler.proxy.forward import (
    BUSY_HEADER,
    FRESH_SESSION,
    SESSION,
    Outcome,
    UpstreamUnavailable,
    forward,
    normalised,
)
from scaler.proxy.metrics import CLIENT_CLOSED, PathSeries, ProxyMetrics, build_metrics
from scaler.proxy.residency import Residency, ResidencyError, ResidencyTiming
from scaler.proxy.routes import (
    INFERENCE_PATHS,
    is_management,
    may_name_a_model,
    names_a_model,
    normal_path,
    path_label,
)
from scaler.proxy.settings import ProxySettings
from scaler.proxy.threads import pin_threads

log = logging.getLogger("scaler.proxy")

READY_TIMEOUT = 2.0
"""Seconds /readyz waits for Ollama before it says not ready."""


class Proxy:
    """Request handlers; one instance per app."""

    def __init__(self, settings: ProxySettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.admission = Admission(parallel=settings.parallel, max_queue=settings.max_queue)
        self.bodies = BodyBudget(settings.body_memory)
        self.metrics: ProxyMetrics = build_metrics(registry, self.admission)
        self.draining = False
        self.residency = _residency(settings, self.admission, registry)

    async def drain(self) -> None:
        """The pod is stopping: say not ready, admit nothing new, and refuse or serve
        what waits in the queue (``drain_queued``: drain.py) while the answers held in
        slots finish, at most ``drain_timeout`` seconds. Ollama's preStop waits for
        this proxy to exit."""
        self.draining = True
        await drain(
            self.admission,
            self.residency,
            queued=self.settings.drain_queued,
            timeout=self.settings.drain_timeout,
        )

    async def inference(self, request: web.Request, *, unknown: bool = False) -> web.StreamResponse:
        """Read the body, wait for a slot (or refuse), then forward; count what Ollama
        did, and a request its client abandoned as ``CLIENT_CLOSED``. ``unknown``: a
        POST to an unknown path, inference only if its body names a model, else
        passed straight through; its body is read within the same bounds either way."""
        path = normal_path(request.path)
        started = time.perf_counter()
        try:
            response = await self._admit_and_forward(request, path, started, unknown)
        except (asyncio.CancelledError, ConnectionResetError):
            self.metrics.count(path, CLIENT_CLOSED)
            raise
        return self._done(path, response)

    async def _admit_and_forward(
        self, request: web.Request, path: str, started: float, unknown: bool
    ) -> web.StreamResponse:
        if self.draining and not unknown:  # an unknown one may not be inference
            return self._refuse(path, Draining(STOPPING))
        bounds = self.settings
        try:  # whole, before any slot: a trickling body must not hold one (body.py)
            async with self.bodies.read(
                request, limit=bounds.max_body, timeout=bounds.body_timeout
            ) as body:
                if unknown and not names_a_model(body):
                    response, _ = await self._forward(request, bounds.upstream, started, body=body)
                    return response
                return await self._admit(request, path, started, body)
        except BodyRefused as refused:
            return await refuse(request, refused)
        except BodiesFull as full:
            return self._refuse(path, full)

    async def _admit(
        self, request: web.Request, path: str, started: float, body: bytes
    ) -> web.StreamResponse:
        if self.settings.num_thread is not None:
            body = pin_threads(path, body, self.settings.num_thread)
        series = self.metrics.path(path)
        queued = time.perf_counter()
        try:
            async with self.admission.slot():
                admitted = time.perf_counter()
                series.queue_wait.observe(admitted - queued)
                response, outcome = await self._forward(
                    request, self.settings.upstream, admitted, body=body
                )
        except (QueueFull, Draining) as refused:
            return self._refuse(path, refused)
        finally:
            if self.residency is not None:
                self.residency.request_ended()  # the ready model waits until the pod is idle
        if outcome is not None:
            self._observe(series, outcome, started)
        return response

    async def passthrough(self, request: web.Request) -> web.StreamResponse:
        """Everything that is not inference goes straight through; model management
        to its own upstream when one is set. A path with repeated or trailing slashes
        is classified and forwarded as its normal form (``normal_path``). A POST to an
        unknown path is read first: inference if its body names a model (routes.py)."""
        request, path = normalised(request)
        if request.method == "POST" and path in INFERENCE_PATHS:  # it had extra slashes
            return await self.inference(request)
        if may_name_a_model(request.method, path):
            return await self.inference(request, unknown=True)
        upstream = self.settings.upstream
        if is_management(path) and self.settings.management_upstream:
            upstream = self.settings.management_upstream
        try:
            response, _ = await self._forward(request, upstream, time.perf_counter())
        except (asyncio.CancelledError, ConnectionResetError):
            self.metrics.count(path, CLIENT_CLOSED)
            raise
        return self._done(path, response)

    async def _forward(
        self,
        request: web.Request,
        upstream: str,
        started: float,
        *,
        body: bytes | None = None,
    ) -> tuple[web.StreamResponse, Outcome | None]:
        fresh = request.app[FRESH_SESSION]
        # Keep-alive only to the Ollama beside us, on loopback: a remote writer behind
        # a Service can vanish without a FIN; a new connect fails at once, where a
        # pooled one would wait out the keepalive bound (forward.upstream_sessions).
        session = request.app[SESSION] if upstream == self.settings.upstream else fresh
        try:
            response, outcome = await forward(
                request,
                session,
                upstream,
                connect_timeout=self.settings.connect_timeout,
                started=started,
                streamed_session=fresh,
                body=body,
            )
        except UpstreamUnavailable as error:
            self.metrics.upstream_errors.labels("connect").inc()
            log.warning("%s", error)
            return json_error(502, str(error)), None
        if outcome.broken:
            self.metrics.upstream_errors.labels("mid_stream").inc()
        return response, outcome

    def _observe(self, series: PathSeries, outcome: Outcome, started: float) -> None:
        series.duration.observe(time.perf_counter() - started)
        if outcome.first_byte is not None and outcome.status < 400:
            series.time_to_first_token.observe(outcome.first_byte)
        stats = outcome.stats
        if not stats or not isinstance(stats.get("model"), str):
            return
        model = stats["model"]
        generated, prompt = self.metrics.tokens(model)
        if isinstance(stats.get("eval_count"), int):
            generated.inc(stats["eval_count"])
        if isinstance(stats.get("prompt_eval_count"), int):
            prompt.inc(stats["prompt_eval_count"])
        load = stats.get("load_duration")
        if isinstance(load, int) and load > 1_000_000:  # > 1 ms: a real load, not a warm hit
            self.metrics.model_load.labels(model).observe(load / 1e9)

    def _refuse(self, path: str, refused: QueueFull | Draining | BodiesFull) -> web.Response:
        """503 busy, with the kind a router reads to send the request elsewhere."""
        self.metrics.rejected.labels(path_label(path)).inc()
        kind = "draining" if isinstance(refused, Draining) else "queue-full"
        response = json_error(503, f"server busy, please try again: {refused}")
        response.headers["Retry-After"] = str(self.settings.retry_after)
        response.headers[BUSY_HEADER] = kind
        if isinstance(refused, BodiesFull):
            response.force_close()  # its body was not read
        return response

    def _done(self, path: str, response: web.StreamResponse) -> web.StreamResponse:
        self.metrics.count(path, response.status)
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready when Ollama answers and the ready model has been loaded once (after
        that, residency reloads it when evicted: docs/proxy.md); never while draining."""
        if self.draining:
            return json_error(503, "draining: this pod is stopping")
        session = request.app[SESSION]
        base = self.settings.upstream.rstrip("/")
        timeout = aiohttp.ClientTimeout(total=READY_TIMEOUT)
        try:
            async with session.get(base + "/", timeout=timeout) as answer:
                if answer.status != 200:
                    return json_error(503, f"Ollama answered {answer.status}")
            residency = self.residency
            if residency is None:
                return web.json_response({"status": "ready"})
            if residency.loaded_once or await residency.resident(session):
                return web.json_response({"status": "ready", "model": residency.model})
        except (TimeoutError, aiohttp.ClientError, ResidencyError) as error:
            return json_error(503, f"Ollama does not answer: {error}")
        return json_error(503, f"model {residency.model} is not loaded yet")


def _residency(
    settings: ProxySettings, admission: Admission, registry: CollectorRegistry
) -> Residency | None:
    if settings.ready_model is None:
        return None
    timing = ResidencyTiming(settings.reload_after, settings.residency_check)
    return Residency(
        num_thread=settings.num_thread,
        model=settings.ready_model,
        upstream=settings.upstream,
        admission=admission,
        timing=timing,
        registry=registry,
    )
