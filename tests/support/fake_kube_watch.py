"""EndpointSlices and their watch, for the fake API server in ``tests/support/fake_kube.py``.

discovery.k8s.io/v1 endpointslices, one route for both verbs, as the apiserver has::

    GET /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=...
        a list; its ``metadata.resourceVersion`` is the fake's current version
    ... &watch=true&resourceVersion=N[&timeoutSeconds=T][&allowWatchBookmarks=true]
        a stream of ``{"type": ..., "object": ...}`` JSON lines: every change after N
        that matches (kept since the last ``compact``), then each new one as it happens;
        N empty or "0": first an ADDED for each matching slice. N older than what is
        kept: an ERROR event carrying a 410 ``Expired`` Status, as the watch cache
        sends. The stream ends after T seconds, on ``expire_watches`` or on shutdown.

Helpers (``kube.fake.slices``): ``add`` / ``replace`` / ``delete`` a slice (each one
write with its own resourceVersion, from the fake's single counter),
``expire_watches`` (end every open stream, optionally with a 410 first),
``gone_next_watch`` (the next watch answers 410, in the stream or as its HTTP
status), ``compact``, ``bookmark`` and ``wait_watches``. ``endpoint_slice`` and
``pod_endpoint`` build the objects the EndpointSlice controller writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support import fake_kube_objects as objects

if TYPE_CHECKING:
    from tests.support.fake_kube import FakeKube

RESOURCE = "endpointslices"
PATH = "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
API_VERSION = "discovery.k8s.io/v1"
SERVICE_LABEL = "kubernetes.io/service-name"


def endpoint_slice(
    namespace: str,
    name: str,
    *,
    service: str,
    endpoints: Iterable[dict[str, Any]] = (),
    ports: Iterable[tuple[str, int | None]] = (("http", 11434),),
    address_type: str = "IPv4",
) -> dict[str, Any]:
    """An EndpointSlice as the controller writes it for ``service`` (ports are TCP)."""
    items = copy.deepcopy(list(endpoints))
    for item in items:
        ref = item.get("targetRef")
        if ref is not None:
            ref.setdefault("namespace", namespace)
    return {
        "kind": "EndpointSlice",
        "apiVersion": API_VERSION,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generateName": f"{service}-",
            "labels": {
                SERVICE_LABEL: service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
            "creationTimestamp": objects.time_str(objects.EPOCH),
        },
        "addressType": address_type,
        "endpoints": items,
        "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports],
    }


def pod_endpoint(
    pod: str,
    ip: str,
    *,
    ready: bool = True,
    terminating: bool = False,
    publish_not_ready: bool = False,
) -> dict[str, Any]:
    """A pod's endpoint as upstream ``podToEndpoint`` derives it: ``ready`` is the pod's
    Ready condition, ``terminating`` its deletionTimestamp (staging/src/k8s.io/endpointslice)."""
    return {
        "addresses": [ip],
        "conditions": {
            "ready": publish_not_ready or (ready and not terminating),
            "serving": ready,
            "terminating": terminating,
        },
        "targetRef": {"kind": "Pod", "name": pod, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, pod))},
        "nodeName": "minikube",
    }


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A failure ``Status`` object, as in an error answer or an ERROR event."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _expired(since: str) -> dict[str, Any]:
    return status(410, "Expired", f"too old resource version: {since}")


@dataclass
class _Change:
    version: int
    type: str
    obj: dict[str, Any]


@dataclass
class _Watcher:
    namespace: str
    requirements: list[objects.Requirement]
    bookmarks: bool
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)

    def wants(self, obj: dict[str, Any]) -> bool:
        return obj["metadata"]["namespace"] == self.namespace and _matches(obj, self.requirements)


class EndpointSlices:
    """The fake's endpointslices (stored in ``FakeKube.objects``) and their watches."""

    def __init__(self, fake: FakeKube) -> None:
        self._fake = fake
        self._changes: list[_Change] = []
        self._oldest = 0
        """Watches from a resourceVersion below this get 410 (history is gone)."""
        self._open: list[_Watcher] = []
        self._gone_next: str | None = None
        self._opened = asyncio.Condition()
        self.watches_started = 0
        """Watch streams answered so far (each one a 200 with events to follow)."""

    # -- changes ---------------------------------------------------------------------

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create a slice (``endpoint_slice``'s shape): an ADDED event."""
        meta = obj["metadata"]
        if (RESOURCE, meta["namespace"], meta["name"]) in self._fake.objects:
            raise ValueError(f"endpointslice {meta['name']} already exists")
        return self._write("ADDED", copy.deepcopy(obj))

    def replace(self, namespace: str, name: str, **changes: Any) -> dict[str, Any]:
        """Change top-level fields of a slice (``endpoints=[...]``, ``ports=[...]``)."""
        obj = copy.deepcopy(self._fake.get(RESOURCE, namespace, name))
        obj.update(copy.deepcopy(changes))
        return self._write("MODIFIED", obj)

    def delete(self, namespace: str, name: str) -> None:
        """Delete a slice: a DELETED event carrying its last state at a new version."""
        obj = self._fake.get(RESOURCE, namespace, name)
        self._write("DELETED", obj)  # the delete itself bumps the version, as in etcd
        del self._fake.objects[(RESOURCE, namespace, name)]

    def _write(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        stored = self._fake._store(RESOURCE, obj)
        change = _Change(int(stored["metadata"]["resourceVersion"]), kind, copy.deepcopy(stored))
        self._changes.append(change)
        for watcher in self._open:
            if watcher.wants(change.obj):
                watcher.queue.put_nowait({"type": kind, "object": change.obj})
        return stored

    # -- scripted watch behaviour ----------------------------------------------------

    def expire_watches(self, *, gone: bool = False) -> int:
        """End every open watch stream, as its timeout would; ``gone``: send an ERROR
        event with a 410 first (history compacted under a running watch). Returns how
        many streams were open."""
        for watcher in self._open:
            if gone:
                obj = _expired(str(self._fake._version))
                watcher.queue.put_nowait({"type": "ERROR", "object": obj})
            watcher.queue.put_nowait(None)
        return len(self._open)

    def gone_next_watch(self, *, http: bool = False) -> None:
        """The next watch request answers 410 Expired, whatever its resourceVersion:
        in a 200 stream as an ERROR event (the watch cache's way), or ``http`` as the
        status of the answer itself."""
        self._gone_next = "http" if http else "event"

    def compact(self) -> None:
        """Forget the change history: a watch from an older version gets 410."""
        self._changes.clear()
        self._oldest = self._fake._version

    def bookmark(self) -> None:
        """Send a BOOKMARK at the current version to the watches that allowed them."""
        obj = {
            "kind": "EndpointSlice",
            "apiVersion": API_VERSION,
            "metadata": {"resourceVersion": str(self._fake._version)},
        }
        for watcher in self._open:
            if watcher.bookmarks:
                watcher.queue.put_nowait({"type": "BOOKMARK", "object": obj})

    async def wait_watches(self, count: int) -> None:
        """Until ``count`` watch streams have been answered in all."""
        async with self._opened:
            await self._opened.wait_for(lambda: self.watches_started >= count)

    def close(self) -> None:
        """End the open streams, so the server can shut down at once."""
        for watcher in self._open:
            watcher.queue.put_nowait(None)

    # -- HTTP ------------------------------------------------------------------------

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(PATH, self._list_or_watch)

    async def _list_or_watch(self, request: web.Request) -> web.StreamResponse:
        ns = request.match_info["ns"]
        try:
            requirements = objects.parse_selector(request.query.get("labelSelector", ""))
        except objects.SelectorError as err:
            return web.json_response(status(400, "BadRequest", str(err)), status=400)
        if request.query.get("watch", "").lower() in ("true", "1"):
            bookmarks = request.query.get("allowWatchBookmarks", "").lower() == "true"
            return await self._watch(request, _Watcher(ns, requirements, bookmarks))
        items = [
            obj
            for (resource, obj_ns, _), obj in sorted(self._fake.objects.items())
            if resource == RESOURCE and obj_ns == ns and _matches(obj, requirements)
        ]
        return self._fake._list("EndpointSliceList", API_VERSION, items)

    async def _watch(self, request: web.Request, watcher: _Watcher) -> web.StreamResponse:
        since = request.query.get("resourceVersion", "")
        if since not in ("", "0") and not since.isdigit():
            message = f"resourceVersion: Invalid value: {since!r}: must be a number"
            return web.json_response(status(400, "BadRequest", message), status=400)
        gone, self._gone_next = self._gone_next, None
        if gone == "http":
            return web.json_response(_expired(since), status=410)
        # Replayed and registered before the first await: no change can slip between.
        if gone is None and since not in ("", "0") and int(since) < self._oldest:
            gone = "event"
        if gone is not None:
            watcher.queue.put_nowait({"type": "ERROR", "object": _expired(since)})
            watcher.queue.put_nowait(None)
        else:
            self._replay(watcher, since)
        self._open.append(watcher)
        try:
            return await self._stream(request, watcher, request.query.get("timeoutSeconds"))
        finally:
            self._open.remove(watcher)

    def _replay(self, watcher: _Watcher, since: str) -> None:
        if since in ("", "0"):
            current = [
                obj for (resource, _, _), obj in sorted(self._fake.objects.items())
                if resource == RESOURCE
            ]  # fmt: skip
            events = [("ADDED", obj) for obj in current]
        else:
            events = [(c.type, c.obj) for c in self._changes if c.version > int(since)]
        for kind, obj in events:
            if watcher.wants(obj):
                watcher.queue.put_nowait({"type": kind, "object": copy.deepcopy(obj)})

    async def _stream(
        self, request: web.Request, watcher: _Watcher, timeout: str | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        async with self._opened:
            self.watches_started += 1
            self._opened.notify_all()
        seconds = int(timeout) if timeout and int(timeout) > 0 else None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while (event := await watcher.queue.get()) is not None:
                    await response.write(json.dumps(event).encode() + b"\n")
        await response.write_eof()
        return response


def _matches(obj: dict[str, Any], requirements: list[objects.Requirement]) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(r(labels) for r in requirements)
