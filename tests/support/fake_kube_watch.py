"""List and watch, for the fake API server in ``tests/support/fake_kube.py``.

Deployments, pods, horizontalpodautoscalers and endpointslices (``KINDS``), one route
for both verbs per kind and per scope (one namespace, or all: ``/apis/apps/v1/deployments``),
as the apiserver has::

    GET /apis/apps/v1/namespaces/{ns}/deployments?labelSelector=...
        a list; its ``metadata.resourceVersion`` is the fake's current version
    ... &watch=true&resourceVersion=N[&timeoutSeconds=T][&allowWatchBookmarks=true]
        a stream of ``{"type": ..., "object": ...}`` JSON lines: every change after N
        that matches (kept since the last ``compact``), then each new one as it happens;
        N empty or "0": first an ADDED for each matching object. N older than what is
        kept: an ERROR event carrying a 410 ``Expired`` Status, as the watch cache
        sends. The stream ends after T seconds, on ``expire_watches`` or on shutdown.

Every write of the fake (the seeding helpers, ``update``, ``delete``, and the API's
own PATCH/PUT/POST) goes through ``FakeKube._store`` or ``FakeKube.delete``, which
``record`` it: one history and one resourceVersion counter for all kinds, as etcd has.

Helpers (``kube.fake.watch``, also reachable as ``kube.fake.slices``):
``expire_watches`` (end every open stream, optionally with a 410 first),
``gone_next_watch`` (the next watch answers 410, in the stream or as its HTTP
status), ``compact``, ``bookmark`` and ``wait_watches``; for slices, ``add`` /
``replace`` / ``delete`` (each one write with its own resourceVersion).
``endpoint_slice`` and ``pod_endpoint`` (from ``fake_kube_slices``) build the objects
the EndpointSlice controller writes. ``request_counts`` tallies a request log by verb and resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support import fake_kube_objects as objects
from tests.support.fake_kube_protocol import ApiError
from tests.support.fake_kube_slices import API_VERSION
from tests.support.fake_kube_slices import endpoint_slice as endpoint_slice
from tests.support.fake_kube_slices import pod_endpoint as pod_endpoint

if TYPE_CHECKING:
    from tests.support.fake_kube import FakeKube

RESOURCE = "endpointslices"
PATH = "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"


def _expired(since: str) -> ApiError:
    return ApiError(410, f"too old resource version: {since}", reason="Expired")


@dataclass(frozen=True)
class Kind:
    """A watchable collection: its plural, its ``kind`` and ``apiVersion``, its list path."""

    resource: str
    kind: str
    api_version: str
    path: str

    @property
    def cluster_path(self) -> str:
        """The same collection across all namespaces (``/api/v1/pods``)."""
        return self.path.replace("/namespaces/{ns}", "")


KINDS = (
    Kind("deployments", "Deployment", "apps/v1", "/apis/apps/v1/namespaces/{ns}/deployments"),
    Kind("pods", "Pod", "v1", "/api/v1/namespaces/{ns}/pods"),
    Kind(
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
    ),
    Kind(RESOURCE, "EndpointSlice", API_VERSION, PATH),
)


@dataclass
class _Change:
    version: int
    resource: str
    type: str
    obj: dict[str, Any]


@dataclass
class _Watcher:
    kind: Kind
    namespace: str | None  # None: all namespaces
    requirements: list[objects.Requirement]
    bookmarks: bool
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)

    def wants(self, resource: str, obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        return (
            resource == self.kind.resource
            and self.namespace in (None, meta["namespace"])
            and _matches(obj, self.requirements)
        )


class Watches:
    """Every write of the fake (``FakeKube._store`` and ``delete`` call ``record``), and
    the list and watch of each kind in ``KINDS``; one history, one version counter."""

    def __init__(self, fake: FakeKube) -> None:
        self._fake = fake
        self._changes: list[_Change] = []
        self._oldest = 0
        """Watches from a resourceVersion below this get 410 (history is gone)."""
        self._open: list[_Watcher] = []
        self._gone_next: str | None = None
        self._opened = asyncio.Condition()
        self.started: Counter[str] = Counter()
        """Watch streams answered so far (each one a 200 with events to follow), by kind."""

    @property
    def watches_started(self) -> int:
        """Watch streams answered so far, of all kinds."""
        return sum(self.started.values())

    def record(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        """A write at ``obj``'s (new) resourceVersion: kept, and sent to open watches."""
        change = _Change(
            int(obj["metadata"]["resourceVersion"]), resource, kind, copy.deepcopy(obj)
        )
        self._changes.append(change)
        for watcher in self._open:
            if watcher.wants(resource, change.obj):
                watcher.queue.put_nowait({"type": kind, "object": change.obj})

    # -- scripted watch behaviour ----------------------------------------------------

    def expire_watches(self, *, gone: bool = False, resource: str | None = None) -> int:
        """End every open watch stream (of ``resource``, or all), as its timeout would;
        ``gone``: send an ERROR event with a 410 first (history compacted under a
        running watch). Returns how many streams were ended."""
        ended = [w for w in self._open if resource in (None, w.kind.resource)]
        for watcher in ended:
            if gone:
                obj = _expired(str(self._fake._version)).status()
                watcher.queue.put_nowait({"type": "ERROR", "object": obj})
            watcher.queue.put_nowait(None)
        return len(ended)

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
        for watcher in self._open:
            if watcher.bookmarks:
                obj = {
                    "kind": watcher.kind.kind,
                    "apiVersion": watcher.kind.api_version,
                    "metadata": {"resourceVersion": str(self._fake._version)},
                }
                watcher.queue.put_nowait({"type": "BOOKMARK", "object": obj})

    async def wait_watches(self, count: int, resource: str | None = None) -> None:
        """Until ``count`` watch streams (of ``resource``, or all) have been answered."""
        async with self._opened:
            await self._opened.wait_for(
                lambda: (self.started[resource] if resource else self.watches_started) >= count
            )

    def close(self) -> None:
        """End the open streams, so the server can shut down at once."""
        for watcher in self._open:
            watcher.queue.put_nowait(None)

    # -- HTTP ------------------------------------------------------------------------

    def routes(self, router: web.UrlDispatcher) -> None:
        for kind in KINDS:
            router.add_get(kind.path, functools.partial(self._list_or_watch, kind))
            router.add_get(kind.cluster_path, functools.partial(self._list_or_watch, kind))

    async def _list_or_watch(self, kind: Kind, request: web.Request) -> web.StreamResponse:
        ns = request.match_info.get("ns")  # None on a cluster-wide path
        try:
            requirements = objects.parse_selector(request.query.get("labelSelector", ""))
        except objects.SelectorError as err:
            raise ApiError(400, str(err)) from err
        if request.query.get("watch", "").lower() in ("true", "1"):
            bookmarks = request.query.get("allowWatchBookmarks", "").lower() == "true"
            return await self._watch(request, _Watcher(kind, ns, requirements, bookmarks))
        # Items in a list answer carry no kind/apiVersion of their own.
        items = [
            {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
            for (resource, obj_ns, _), obj in sorted(self._fake.objects.items())
            if resource == kind.resource and ns in (None, obj_ns) and _matches(obj, requirements)
        ]
        return web.json_response(
            {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.api_version,
                "metadata": {"resourceVersion": str(self._fake._version)},
                "items": items,
            }
        )

    async def _watch(self, request: web.Request, watcher: _Watcher) -> web.StreamResponse:
        since = request.query.get("resourceVersion", "")
        if since not in ("", "0") and not since.isdigit():
            message = f"resourceVersion: Invalid value: {since!r}: must be a number"
            raise ApiError(400, message)
        gone, self._gone_next = self._gone_next, None
        if gone == "http":
            raise _expired(since)
        # Replayed and registered before the first await: no change can slip between.
        if gone is None and since not in ("", "0") and int(since) < self._oldest:
            gone = "event"
        if gone is not None:
            watcher.queue.put_nowait({"type": "ERROR", "object": _expired(since).status()})
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
            events = [
                ("ADDED", resource, obj)
                for (resource, _, _), obj in sorted(self._fake.objects.items())
            ]
        else:
            events = [(c.type, c.resource, c.obj) for c in self._changes if c.version > int(since)]
        for kind, resource, obj in events:
            if watcher.wants(resource, obj):
                watcher.queue.put_nowait({"type": kind, "object": copy.deepcopy(obj)})

    async def _stream(
        self, request: web.Request, watcher: _Watcher, timeout: str | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        async with self._opened:
            self.started[watcher.kind.resource] += 1
            self._opened.notify_all()
        seconds = int(timeout) if timeout and int(timeout) > 0 else None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while (event := await watcher.queue.get()) is not None:
                    await response.write(json.dumps(event).encode() + b"\n")
        await response.write_eof()
        return response


class EndpointSlices(Watches):
    """``Watches``, with helpers to write EndpointSlices as their controller does."""

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create a slice (``endpoint_slice``'s shape): an ADDED event."""
        meta = obj["metadata"]
        if (RESOURCE, meta["namespace"], meta["name"]) in self._fake.objects:
            raise ValueError(f"endpointslice {meta['name']} already exists")
        return self._fake._store(RESOURCE, copy.deepcopy(obj))

    def replace(self, namespace: str, name: str, **changes: Any) -> dict[str, Any]:
        """Change top-level fields of a slice (``endpoints=[...]``, ``ports=[...]``)."""
        obj = copy.deepcopy(self._fake.get(RESOURCE, namespace, name))
        obj.update(copy.deepcopy(changes))
        return self._fake._store(RESOURCE, obj)

    def delete(self, namespace: str, name: str) -> None:
        """Delete a slice: a DELETED event carrying its last state at a new version."""
        self._fake.delete(RESOURCE, namespace, name)


def request_counts(requests: Iterable[Any]) -> Counter[tuple[str, str]]:
    """``FakeKube.requests`` tallied by (verb, resource) as the apiserver's audit log
    names them: verb get, list, watch, patch, put, post or delete; resource the
    plural, with its subresource (``deployments/scale``)."""
    counts: Counter[tuple[str, str]] = Counter()
    for request in requests:
        parts = request.path.strip("/").split("/")
        rest = parts[parts.index("namespaces") + 2 :] if "namespaces" in parts else parts[-1:]
        resource = "/".join(rest[:1] + rest[2:3])
        verb = request.method.lower()
        if verb == "get" and len(rest) == 1:
            watching = request.query.get("watch", "").lower() in ("true", "1")
            verb = "watch" if watching else "list"
        counts[verb, resource] += 1
    return counts


def _matches(obj: dict[str, Any], requirements: list[objects.Requirement]) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(r(labels) for r in requirements)
