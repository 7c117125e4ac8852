"""The router's request handlers (``Router``): the shared queue for inference,
pass-through for the rest, the probes and the drain.

Open WebUI talks to the router's Service; the router binds each inference request to
a pod's free slot (``Dispatcher``) and streams it through that pod's ``scaler proxy``
with the proxy's own forwarding code, so every promise of docs/proxy.md (unbuffered
NDJSON and SSE, cancellation, clean errors, no read timeout) holds across both hops.
The app around the handlers (route table, the discovery and sessions it owns) is
app.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from scaler.proxy.body import BodiesFull, BodyBudget, BodyRefused, json_error, refuse
from scaler.proxy.forward import (
    BUSY_HEADER,
    FRESH_SESSION,
    SESSION,
    UpstreamUnavailable,
    forward,
    normalised,
    open_upstream,
    relay,
)
from scaler.proxy.metrics import CLIENT_CLOSED
from scaler.proxy.routes import (
    INFERENCE_PATHS,
    is_form,
    is_management,
    may_name_a_model,
    names_a_model,
    normal_path,
    path_label,
)
from scaler.router.dispatch import Dispatcher, Draining, NoReadyPod, Pod, QueueFull
from scaler.router.metrics import RouterMetrics, build_metrics
from scaler.router.requests import BadRequest, json_object, lists_models
from scaler.router.settings import RouterSettings
from scaler.router.watch import QueueWatch

log = logging.getLogger("scaler.router")


CONNECT_ATTEMPTS = 3
"""Pods tried for one request that cannot be reached before the client gets a 502.
A refusal (the slot is another router's) is not a failure and is not counted."""


class Router:
    """Request handlers; one instance per app. ``ready``: discovery has synced."""

    def __init__(
        self,
        settings: RouterSettings,
        registry: CollectorRegistry,
        dispatcher: Dispatcher,
        ready: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.watch = QueueWatch(dispatcher)
        self.metrics: RouterMetrics = build_metrics(registry, dispatcher, self.watch)
        self.bodies = BodyBudget(settings.body_memory)
        self._ready = ready
        self._refuse_later: asyncio.TimerHandle | None = None

    async def inference(self, request: web.Request, *, unknown: bool = False) -> web.StreamResponse:
        """Queue until a pod has a free slot, then stream the answer through it; a
        request its client abandoned is counted as ``CLIENT_CLOSED``. ``unknown``: a
        POST to an unknown path, queued only if its body names a model, else passed
        straight through; its body is read within the same bounds either way."""
        path = normal_path(request.path)
        try:
            return await self._queue_and_relay(request, path, unknown)
        except (asyncio.CancelledError, ConnectionResetError):
            self._count(path, CLIENT_CLOSED)
            raise

    async def _queue_and_relay(
        self, request: web.Request, path: str, unknown: bool
    ) -> web.StreamResponse:
        arrived = time.perf_counter()
        bounds = self.settings
        try:
            async with self.bodies.read(
                request, limit=bounds.max_body, timeout=bounds.body_timeout
            ) as body:  # read before queueing: sent again on a refusal, never trickling
                if unknown and not names_a_model(body):
                    return await self._pass(request, path, body)
                if not is_form(request.headers.get("Content-Type", "")):
                    json_object(body)  # a form (audio, image edits) goes on as it came
                pod, upstream, bound = await self._bind(request, body)
                return await self._relay(request, path, (pod, upstream), arrived, bound)
        except BodyRefused as refused:
            return self._reject(path, "bad_request", await refuse(request, refused))
        except BadRequest as bad:
            return self._reject(path, "bad_request", json_error(bad.status, str(bad)))
        except (QueueFull, BodiesFull) as full:
            response = self._busy(str(full))
            if isinstance(full, BodiesFull):
                response.force_close()  # its body was not read
            return self._reject(path, "queue_full", response)
        except NoReadyPod as none:
            return self._reject(path, "no_ready_pod", self._busy(str(none)))
        except Draining as draining:
            return self._reject(path, "draining", self._busy(str(draining)))
        except UpstreamUnavailable as error:
            log.warning("%s", error)
            return self._done(path, json_error(502, str(error)))

    async def _relay(
        self,
        request: web.Request,
        path: str,
        bound_to: tuple[Pod, aiohttp.ClientResponse],
        arrived: float,
        bound: float,
    ) -> web.StreamResponse:
        pod, upstream = bound_to
        label = path_label(path)
        self.metrics.queue_wait.labels(label).observe(bound - arrived)
        try:
            response, outcome = await relay(request, upstream, arrived)
        finally:
            upstream.close()  # never back to a pool half-read: the pod must see the end
            self.dispatcher.release(pod)
        if outcome.broken:
            self.metrics.upstream_errors.labels("mid_stream").inc()
        self.metrics.duration.labels(label).observe(time.perf_counter() - arrived)
        if outcome.first_byte is not None and outcome.status < 400:
            self.metrics.time_to_first_byte.labels(label).observe(outcome.first_byte)
        return self._done(path, response)

    async def drain(self) -> None:
        """The router is stopping: a new request that would have to queue gets 503 with
        Retry-After now (the client's retry reaches the other router); the requests
        already queued keep their places and are served as slots free up, for at most
        ``drain_timeout`` seconds; then those still waiting get the same 503, before
        the kill could reset their connections. Bound requests stream to their end."""
        self.dispatcher.close("this router is stopping")
        self.watch.close()  # the controller falls back to polling, then another router
        self._refuse_later = asyncio.get_running_loop().call_later(
            self.settings.drain_timeout,
            self.dispatcher.refuse_waiting,
            "this router is stopping and its queue did not drain in time",
        )
        log.info(
            "draining: %d queued request(s), %d streaming",
            self.dispatcher.queued,
            self.dispatcher.in_flight,
        )

    def stop_draining(self) -> None:
        if self._refuse_later is not None:
            self._refuse_later.cancel()

    async def _bind(
        self, request: web.Request, body: bytes
    ) -> tuple[Pod, aiohttp.ClientResponse, float]:
        """A pod that accepted the request, its answer's head (body unread), and when
        the request was bound to that pod's slot (``perf_counter``).

        A pod that refuses (its slot is taken by another router) or cannot be reached
        gives the request back to the head of the queue, for the next free slot.
        """
        failures = 0
        again, arrived = False, self.dispatcher.now()
        while True:
            pod = await self.dispatcher.acquire(again=again, arrived=arrived)
            bound, again = time.perf_counter(), True
            try:
                upstream = await open_upstream(
                    request,
                    request.app[SESSION],
                    pod.url,
                    body=body,
                    connect_timeout=self.settings.connect_timeout,
                )
            except UpstreamUnavailable:
                self.dispatcher.refused(pod)
                self.metrics.upstream_errors.labels("connect").inc()
                failures += 1
                if failures >= CONNECT_ATTEMPTS:
                    raise
                self.metrics.redispatches.labels("connect_failed").inc()
                continue
            except BaseException:  # cancelled while connecting: the slot is ours to free
                self.dispatcher.release(pod)
                raise
            if upstream.status == 503 and BUSY_HEADER in upstream.headers:
                # The pod's proxy turned it away before Ollama saw it: its slot is
                # another router's, or the pod is stopping (draining).
                draining = upstream.headers[BUSY_HEADER] == "draining"
                upstream.close()  # the proxy's short JSON answer: not worth reading
                self.dispatcher.refused(pod)
                self.metrics.redispatches.labels("draining" if draining else "slot_taken").inc()
                continue
            return pod, upstream, bound

    async def passthrough(self, request: web.Request) -> web.StreamResponse:
        """Everything that is not inference: to the least busy ready pod, streamed;
        model management (and blob uploads) to the models' writer when one is set. A
        path with repeated or trailing slashes is classified and forwarded as its
        normal form (``normal_path``), an inference one queued as inference. A POST to
        an unknown path is read first: queued if its body names a model (routes.py)."""
        request, path = normalised(request)
        if request.method == "POST" and path in INFERENCE_PATHS:  # it had extra slashes
            return await self.inference(request)
        if may_name_a_model(request.method, path):
            return await self.inference(request, unknown=True)
        try:
            return await self._pass(request, path)
        except (asyncio.CancelledError, ConnectionResetError):
            self._count(path, CLIENT_CLOSED)
            raise

    async def _pass(
        self, request: web.Request, path: str, body: bytes | None = None
    ) -> web.StreamResponse:
        """To the least busy ready pod (or the writer), streamed; ``body``: read
        already (an unknown POST that named no model)."""
        session = request.app[SESSION]
        writer = self.settings.management_upstream
        pod = None if writer and is_management(path) else self.dispatcher.table.least_busy()
        if pod is not None:
            url = pod.url
        elif writer and (is_management(path) or lists_models(request.method, path)):
            # Management always goes to the writer; the model list too while no pod
            # is ready (scaled to zero), so Open WebUI still shows the models.
            url, session = writer, request.app[FRESH_SESSION]  # long pulls: not pooled
        else:
            return self._done(path, self._busy("no Ollama pod is ready"))
        try:
            response, _ = await forward(
                request,
                session,
                url,
                connect_timeout=self.settings.connect_timeout,
                started=time.perf_counter(),
                streamed_session=request.app[FRESH_SESSION],
                body=body,
            )
        except UpstreamUnavailable as error:
            self.metrics.upstream_errors.labels("connect").inc()
            log.warning("%s", error)
            return self._done(path, json_error(502, str(error)))
        return self._done(path, response)

    def _busy(self, reason: str) -> web.Response:
        response = json_error(503, f"server busy, please try again: {reason}")
        response.headers["Retry-After"] = str(self.settings.retry_after)
        return response

    def _reject(self, path: str, reason: str, response: web.Response) -> web.Response:
        self.metrics.rejected.labels(reason).inc()
        self._done(path, response)
        return response

    def _done(self, path: str, response: web.StreamResponse) -> web.StreamResponse:
        self._count(path, response.status)
        return response

    def _count(self, path: str, status: int) -> None:
        self.metrics.requests.labels(path_label(path), str(status)).inc()

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready once discovery has listed the pods (a router with no pods ready still
        answers, with a clear 503, rather than leaving the Service)."""
        if not self._ready():
            return json_error(503, "the Ollama pods are not listed yet")
        counts = {s.value: n for s, n in self.dispatcher.table.pods_by_state().items()}
        return web.json_response({"status": "ready", "pods": counts})
