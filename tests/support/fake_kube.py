"""A small, faithful fake Kubernetes API server for the endpoints scaler uses.

It runs on aiohttp at 127.0.0.1 on a free port, in the test's event loop, and speaks
real HTTP with the apiserver's JSON shapes (``kind``/``apiVersion``/``metadata``, and
``Status`` objects for errors), so the real kubernetes-asyncio client talks to it::

    async with running_cluster(tmp_path, monkeypatch) as kube:   # kube.fake, kube.api
        kube.fake.add_deployment("ml", "ollama", replicas=2)
        kube.fake.add_pod("ml", "ollama-a", labels={"app": "ollama"})
        kube.fake.fail("PATCH", r"/deployments/ollama/scale$", 409)   # the next such call
        await KubeActuator(kube.api, request_timeout=1).scale("ml", "ollama", 3)
        assert kube.fake.calls("PATCH", "/scale$")[-1].body["spec"] == {"replicas": 3}

Endpoints: apps/v1 deployments (GET, PATCH) and their ``scale`` subresource (GET,
PATCH, PUT); core/v1 pods (PATCH of metadata); coordination.k8s.io/v1 leases
(GET, POST, PUT); core/v1 and events.k8s.io/v1 events (POST); list and watch (by
``labelSelector``) of deployments, pods, autoscaling/v2 horizontalpodautoscalers and
discovery.k8s.io/v1 endpointslices, through ``watch``: see
``tests/support/fake_kube_watch.py``. Every request is recorded in ``requests``;
``request_counts()`` tallies them by verb and resource.

Like the apiserver, one resourceVersion counter covers all objects; a write that
changes an object bumps it (a no-op write does not); a write that carries a stale
``metadata.resourceVersion`` gets 409 Conflict. A Deployment's ``scale`` is a view of
the Deployment, not an object of its own: it serves the Deployment's resourceVersion,
and any write to the Deployment (spec, status or metadata) changes the scale's.
Scaling a Deployment does not create or delete pods (there is no deployment
controller): tests add pods themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from kubernetes_asyncio.client import ApiClient

from scaler.kube.client import api_client
from tests.support import fake_kube_objects as objects
from tests.support.fake_kube_watch import EndpointSlices, Watches, request_counts
from tests.support.loopback import no_env_proxy

TOKEN = "fake-token"
"""The bearer token the fake expects (and ``write_kubeconfig`` writes)."""

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_MERGE_PATCH = ("application/merge-patch+json", "application/strategic-merge-patch+json")
_NAMESPACED = "/namespaces/{ns}"
_APPS = "/apis/apps/v1" + _NAMESPACED + "/deployments/{name}"
_LEASES = "/apis/coordination.k8s.io/v1" + _NAMESPACED + "/leases"


@dataclass(frozen=True)
class Request:
    """One request as the fake received it; ``body`` is the parsed JSON (or None)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    content_type: str


@dataclass
class _Script:
    method: str
    pattern: re.Pattern[str]
    times: int | None
    status: int | None = None
    reason: str | None = None
    message: str | None = None
    delay: float = 0.0
    released: asyncio.Event = field(default_factory=asyncio.Event)


class ApiError(Exception):
    """Raised by a handler; answered as a ``Status`` object with this code."""

    def __init__(
        self, code: int, message: str, *, reason: str | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details
        self.reason = reason or _REASONS.get(code, "Unknown")

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return web.json_response(body, status=self.code)


def _not_found(resource: str, name: str) -> ApiError:
    kind, _, group = resource.partition(".")
    return ApiError(
        404,
        f'{resource} "{name}" not found',
        details={"name": name, "group": group, "kind": kind},
    )


def _conflict(resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details={"name": name, "kind": resource.split(".")[0]},
    )


_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def _is_int32(text: object) -> bool:
    """As upstream GetDeletionCostFromPodAnnotations: no '+', no leading zeros."""
    if not isinstance(text, str) or not re.fullmatch(r"0|-?[1-9][0-9]*", text):
        return False
    return -(2**31) <= int(text) < 2**31


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge is the same for the fields we patch)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


class FakeKube:
    """The fake apiserver: seed state from Python, script failures, read what happened."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        """Stored objects by (resource, namespace, name); resource is the plural."""
        self.events: list[dict[str, Any]] = []
        """Every Event created (core/v1 and events.k8s.io/v1), in order."""
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests the fake was handling at one time."""
        self._version = 1000
        self._scripts: list[_Script] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.slices = EndpointSlices(self)
        """EndpointSlices: add, change, delete them; script their watches."""
        self.watch: Watches = self.slices
        """The watches of every kind (the same object as ``slices``)."""

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> FakeKube:
        app = web.Application(middlewares=[self._middleware])
        self._routes(app.router)
        self._runner = web.AppRunner(app, handle_signals=False, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for script in self._scripts:
            script.released.set()
        self.slices.close()  # open watch streams would hold the shutdown
        if self._runner is not None:
            await self._runner.cleanup()

    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        """A kubeconfig file whose current context points at this fake."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": TOKEN}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    # -- seeding and state -------------------------------------------------------

    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        replicas: int = 1,
        status_replicas: int | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        container: str = "ollama",
        cpu: str | None = "1",
        selector: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A Deployment selecting ``labels`` (default ``{"app": name}``).

        ``selector``: its ``spec.selector`` instead (matchLabels, matchExpressions).
        """
        obj = objects.deployment(
            namespace,
            name,
            replicas=replicas,
            status_replicas=replicas if status_replicas is None else status_replicas,
            labels=labels or {"app": name},
            annotations=annotations or {},
            container=container,
            cpu=cpu,
            selector=selector,
        )
        return self._store("deployments", obj)

    def add_pod(
        self,
        namespace: str,
        name: str,
        *,
        labels: dict[str, str],
        phase: str = "Running",
        ready: bool | None = True,
        ready_since: datetime | None = None,
        start_time: datetime | None = objects.EPOCH,
        containers: dict[str, str | None] | None = None,
        deleting: bool = False,
        ip: str | None = None,
    ) -> dict[str, Any]:
        """A Pod; ``containers`` maps names to CPU requests (default ``ollama: "1"``)."""
        obj = objects.pod(
            namespace,
            name,
            labels=labels,
            phase=phase,
            ready=ready,
            ready_since=ready_since,
            start_time=start_time,
            containers={"ollama": "1"} if containers is None else containers,
            deleting=deleting,
            ip=ip,
        )
        return self._store("pods", obj)

    def add_hpa(
        self,
        namespace: str,
        name: str,
        *,
        target_name: str,
        target_kind: str = "Deployment",
        target_api_version: str = "apps/v1",
    ) -> dict[str, Any]:
        obj = objects.hpa(
            namespace,
            name,
            target_kind=target_kind,
            target_name=target_name,
            target_api_version=target_api_version,
        )
        return self._store("horizontalpodautoscalers", obj)

    def add_lease(
        self,
        namespace: str,
        name: str,
        *,
        holder: str | None = None,
        duration: int | None = None,
        renew_time: datetime | None = None,
        acquire_time: datetime | None = None,
        transitions: int | None = None,
    ) -> dict[str, Any]:
        obj = objects.lease(
            namespace,
            name,
            holder=holder,
            duration=duration,
            renew_time=renew_time,
            acquire_time=acquire_time,
            transitions=transitions,
        )
        return self._store("leases", obj)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        """The stored object (a live reference; use ``update`` to change it)."""
        return self.objects[(resource, namespace, name)]

    def update(self, resource: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Another client's write: merge ``patch`` in and bump the resourceVersion."""
        key = (resource, namespace, name)
        self._store(resource, _merge(self.objects[key], patch))

    def delete(self, resource: str, namespace: str, name: str) -> None:
        """Another client's delete: a DELETED event carrying the object's last state at a
        new version (the delete itself bumps it, as in etcd)."""
        obj = self.objects.pop((resource, namespace, name))
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self.watch.record(resource, "DELETED", obj)

    def request_counts(self) -> Counter[tuple[str, str]]:
        """The requests so far by (verb, resource): ``("watch", "pods")``,
        ``("patch", "deployments/scale")``; verbs are the audit log's."""
        return request_counts(self.requests)

    def _store(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Every write goes through here: a new resourceVersion and a watch event."""
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        self._version += 1
        meta["resourceVersion"] = str(self._version)
        key = (resource, meta["namespace"], meta["name"])
        kind = "MODIFIED" if key in self.objects else "ADDED"
        self.objects[key] = obj
        self.watch.record(resource, kind, obj)
        return obj

    # -- scripted failures and recorded requests ---------------------------------

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        times: int | None = 1,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests (None: all) with a Status error.

        ``path_pattern`` is a regular expression searched in the request path.
        """
        self._scripts.append(
            _Script(method, re.compile(path_pattern), times, status, reason, message)
        )

    def delay(
        self, method: str, path_pattern: str, seconds: float = math.inf, *, times: int | None = 1
    ) -> asyncio.Event:
        """Hold matching requests for ``seconds`` (default until released or closed).

        Returns an event: set it to let the held requests through at once.
        """
        script = _Script(method, re.compile(path_pattern), times, delay=seconds)
        self._scripts.append(script)
        return script.released

    def calls(self, method: str, path_pattern: str = "") -> list[Request]:
        """The recorded requests with this method whose path matches the pattern."""
        pattern = re.compile(path_pattern)
        return [r for r in self.requests if r.method == method and pattern.search(r.path)]

    def _take_script(self, method: str, path: str) -> _Script | None:
        for script in self._scripts:
            if script.method == method and script.pattern.search(path) and script.times != 0:
                if script.times is not None:
                    script.times -= 1
                return script
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.text()
        body = json.loads(raw) if raw and "json" in request.content_type else (raw or None)
        self.requests.append(
            Request(request.method, request.path, dict(request.query), body, request.content_type)
        )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                raise ApiError(401, "Unauthorized")
            script = self._take_script(request.method, request.path)
            if script is not None and script.delay > 0:
                timeout = None if math.isinf(script.delay) else script.delay
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(script.released.wait(), timeout)
            if script is not None and script.status is not None:
                message = script.message or f"scripted {script.status} for {request.path}"
                raise ApiError(script.status, message, reason=script.reason)
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as err:
            return err.response()
        except web.HTTPException as err:  # no such route, or method not allowed
            text = "the server could not find the requested resource"
            return ApiError(err.status, text if err.status == 404 else err.reason).response()
        finally:
            self.in_flight -= 1

    # -- endpoints ---------------------------------------------------------------

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(_APPS, self._get_deployment)
        router.add_patch(_APPS, self._patch_deployment)
        router.add_get(_APPS + "/scale", self._get_scale)
        router.add_patch(_APPS + "/scale", self._patch_scale)
        router.add_put(_APPS + "/scale", self._put_scale)
        router.add_patch("/api/v1" + _NAMESPACED + "/pods/{name}", self._patch_pod)
        router.add_get(_LEASES + "/{name}", self._get_lease)
        router.add_post(_LEASES, self._create_lease)
        router.add_put(_LEASES + "/{name}", self._replace_lease)
        router.add_post("/api/v1" + _NAMESPACED + "/events", self._create_core_event)
        events = "/apis/events.k8s.io/v1" + _NAMESPACED + "/events"
        router.add_post(events, self._create_events_event)
        self.slices.routes(router)

    def _find(self, resource: str, request: web.Request, what: str) -> dict[str, Any]:
        ns, name = request.match_info["ns"], request.match_info["name"]
        obj = self.objects.get((resource, ns, name))
        if obj is None:
            raise _not_found(what, name)
        return obj

    async def _get_deployment(self, request: web.Request) -> web.Response:
        return web.json_response(self._find("deployments", request, "deployments.apps"))

    async def _patch_deployment(self, request: web.Request) -> web.Response:
        current = self._find("deployments", request, "deployments.apps")
        merged = _merge(current, await _patch_body(request))
        for fixed in ("name", "namespace", "uid", "creationTimestamp"):
            merged["metadata"][fixed] = current["metadata"][fixed]
        if merged["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise _conflict("deployments.apps", current["metadata"]["name"])
        if merged != current:
            if merged["spec"] != current["spec"]:
                merged["metadata"]["generation"] = current["metadata"]["generation"] + 1
            current = self._store("deployments", merged)
        return web.json_response(current)

    def _scale_of(self, deployment: dict[str, Any]) -> dict[str, Any]:
        meta = deployment["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": deployment["spec"]["replicas"]},
            "status": {
                "replicas": deployment["status"]["replicas"],
                "selector": objects.format_selector(deployment["spec"]["selector"]),
            },
        }

    async def _get_scale(self, request: web.Request) -> web.Response:
        deployment = self._find("deployments", request, "deployments.apps")
        return web.json_response(self._scale_of(deployment))

    async def _patch_scale(self, request: web.Request) -> web.Response:
        deployment = self._find("deployments", request, "deployments.apps")
        scale = _merge(self._scale_of(deployment), await _patch_body(request))
        return web.json_response(self._write_scale(deployment, scale))

    async def _put_scale(self, request: web.Request) -> web.Response:
        deployment = self._find("deployments", request, "deployments.apps")
        scale = await request.json()
        if not scale.get("metadata", {}).get("resourceVersion"):  # scale allows unconditional
            scale.setdefault("metadata", {})["resourceVersion"] = _version_of(deployment)
        return web.json_response(self._write_scale(deployment, scale))

    def _write_scale(self, deployment: dict[str, Any], scale: dict[str, Any]) -> dict[str, Any]:
        name = deployment["metadata"]["name"]
        if scale.get("metadata", {}).get("resourceVersion") != _version_of(deployment):
            raise _conflict("deployments.apps", name)
        replicas = scale.get("spec", {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(
                422,
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas!r}: must be greater than or equal to 0",
            )
        if replicas != deployment["spec"]["replicas"]:
            deployment["spec"]["replicas"] = replicas
            deployment["metadata"]["generation"] += 1
            deployment = self._store("deployments", deployment)
        return self._scale_of(deployment)

    async def _patch_pod(self, request: web.Request) -> web.Response:
        """A merge patch of a pod's metadata (what scaler writes: annotations)."""
        current = self._find("pods", request, "pods")
        patch = await _patch_body(request)
        if set(patch) - {"metadata"}:
            raise ApiError(422, f"this fake patches only pod metadata, got {sorted(patch)}")
        merged = _merge(current, patch)
        cost = (merged["metadata"].get("annotations") or {}).get(_DELETION_COST)
        if cost is not None and not _is_int32(cost):  # upstream ValidatePodSpecificAnnotations
            raise ApiError(
                422,
                f'Pod "{current["metadata"]["name"]}" is invalid: metadata.annotations'
                f"[{_DELETION_COST}]: Invalid value: {cost!r}: must be a 32bit integer",
            )
        for fixed in ("name", "namespace", "creationTimestamp"):
            merged["metadata"][fixed] = current["metadata"][fixed]
        return web.json_response(self._store("pods", merged) if merged != current else current)

    def _list(self, kind: str, api_version: str, items: list[dict[str, Any]]) -> web.Response:
        # Items in a list response carry no kind/apiVersion of their own.
        bare = [{k: v for k, v in i.items() if k not in ("kind", "apiVersion")} for i in items]
        return web.json_response(
            {
                "kind": kind,
                "apiVersion": api_version,
                "metadata": {"resourceVersion": str(self._version)},
                "items": bare,
            }
        )

    async def _get_lease(self, request: web.Request) -> web.Response:
        return web.json_response(self._find("leases", request, "leases.coordination.k8s.io"))

    async def _create_lease(self, request: web.Request) -> web.Response:
        lease = _check_lease(await _json_body(request), request.match_info["ns"])
        name = lease["metadata"]["name"]
        if ("leases", request.match_info["ns"], name) in self.objects:
            raise _already_exists("leases.coordination.k8s.io", name)
        meta = lease["metadata"]
        meta.pop("resourceVersion", None)
        meta["creationTimestamp"] = objects.time_str(datetime.now().astimezone())
        return web.json_response(self._store("leases", lease), status=201)

    async def _replace_lease(self, request: web.Request) -> web.Response:
        current = self._find("leases", request, "leases.coordination.k8s.io")
        lease = _check_lease(await _json_body(request), request.match_info["ns"])
        name = current["metadata"]["name"]
        if lease["metadata"]["name"] != name:
            raise ApiError(400, "the name of the object does not match the name on the URL")
        version = lease["metadata"].get("resourceVersion")
        if not version:
            raise ApiError(
                422,
                f'Lease.coordination.k8s.io "{name}" is invalid: metadata.resourceVersion: '
                "Invalid value: 0x0: must be specified for an update",
            )
        if version != _version_of(current):
            raise _conflict("leases.coordination.k8s.io", name)
        for fixed in ("uid", "creationTimestamp"):
            lease["metadata"][fixed] = current["metadata"][fixed]
        if lease == current:
            return web.json_response(current)
        return web.json_response(self._store("leases", lease))

    async def _create_core_event(self, request: web.Request) -> web.Response:
        event = await _json_body(request)
        _check_namespace(event, request.match_info["ns"])
        if not event.get("involvedObject"):
            raise _invalid("Event", "involvedObject", "Required value")
        return self._create_event(event, "events")

    async def _create_events_event(self, request: web.Request) -> web.Response:
        event = await _json_body(request)
        ns = request.match_info["ns"]
        _check_namespace(event, ns)
        if objects.parse_micro_time(event.get("eventTime")) is None:
            raise ApiError(400, f"eventTime: not a MicroTime: {event.get('eventTime')!r}")
        for key in ("reportingController", "reportingInstance", "action", "reason"):
            if not event.get(key):
                raise _invalid("Event.events.k8s.io", key, "Required value")
        if event.get("type") not in ("Normal", "Warning"):
            raise _invalid("Event.events.k8s.io", "type", "Unsupported value")
        if len(event.get("note") or "") > 1024:
            raise _invalid("Event.events.k8s.io", "note", "Too long")
        if (event.get("regarding") or {}).get("namespace", ns) != ns:
            raise _invalid("Event.events.k8s.io", "regarding.namespace", "does not match")
        return self._create_event(event, "events.events.k8s.io")

    def _create_event(self, event: dict[str, Any], resource: str) -> web.Response:
        meta = event["metadata"]
        if not meta.get("name"):
            raise _invalid(resource, "metadata.name", "Required value")
        if ("events", meta["namespace"], meta["name"]) in self.objects:
            raise _already_exists(resource, meta["name"])
        meta["creationTimestamp"] = objects.time_str(datetime.now().astimezone())
        stored = self._store("events", event)
        self.events.append(stored)
        return web.json_response(stored, status=201)


def _version_of(obj: dict[str, Any]) -> str:
    version: str = obj["metadata"]["resourceVersion"]
    return version


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError as err:
        raise ApiError(400, f"invalid JSON: {err}") from err
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be an object")
    body.setdefault("metadata", {})
    return body


async def _patch_body(request: web.Request) -> dict[str, Any]:
    if request.content_type not in _MERGE_PATCH:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format ({request.content_type}) - "
            "accepted media types include: " + ", ".join(_MERGE_PATCH),
        )
    return await _json_body(request)


def _check_namespace(obj: dict[str, Any], namespace: str) -> None:
    meta = obj["metadata"]
    if meta.setdefault("namespace", namespace) != namespace:
        raise ApiError(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        )


def _check_lease(lease: dict[str, Any], namespace: str) -> dict[str, Any]:
    """Decode a Lease as the apiserver would: MicroTime fields and whole-number fields."""
    _check_namespace(lease, namespace)
    if not lease["metadata"].get("name"):
        raise _invalid("Lease.coordination.k8s.io", "metadata.name", "Required value")
    spec = lease.setdefault("spec", {})
    for key in ("acquireTime", "renewTime"):
        if key in spec:
            moment = objects.parse_micro_time(spec[key])
            if moment is None:
                raise ApiError(
                    400,
                    f'Lease in version "v1" cannot be handled as a Lease: spec.{key}: '
                    f"{spec[key]!r} is not RFC 3339 with microseconds",
                )
            spec[key] = objects.micro_time_str(moment)  # stored and served in UTC
    for key, minimum in (("leaseDurationSeconds", 1), ("leaseTransitions", 0)):
        value = spec.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < minimum
        ):
            raise _invalid("Lease.coordination.k8s.io", f"spec.{key}", f"Invalid value: {value!r}")
    lease["kind"], lease["apiVersion"] = "Lease", "coordination.k8s.io/v1"
    return lease


def _invalid(kind: str, path: str, problem: str) -> ApiError:
    return ApiError(422, f"{kind} is invalid: {path}: {problem}")


def _already_exists(resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{resource} "{name}" already exists',
        reason="AlreadyExists",
        details={"name": name, "kind": resource.split(".")[0]},
    )


@dataclass(frozen=True)
class Cluster:
    """A running fake and a real kubernetes-asyncio client configured to reach it."""

    fake: FakeKube
    api: ApiClient


@contextlib.asynccontextmanager
async def running_cluster(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    """Start a FakeKube, write a kubeconfig for it in ``workdir``, open an ApiClient."""
    no_env_proxy(monkeypatch)
    async with (
        FakeKube() as fake,
        api_client(fake.write_kubeconfig(workdir / "kubeconfig")) as api,
    ):
        yield Cluster(fake, api)
