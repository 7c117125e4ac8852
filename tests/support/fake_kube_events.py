"""Events, core/v1 and events.k8s.io/v1, for the fake API server
(``tests/support/fake_kube.py``): what scaler records its decisions as.

Each API version's required fields are checked as the apiserver validates them
(core/v1: ``involvedObject``; events.k8s.io/v1: a MicroTime ``eventTime``, the
reporting fields, ``type`` Normal or Warning, a ``note`` of at most 1 KiB). Every
Event created is also appended to ``FakeKube.events``, in order.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support import fake_kube_objects as objects
from tests.support.fake_kube_protocol import (
    NAMESPACED,
    ApiError,
    already_exists,
    check_namespace,
    invalid,
    json_body,
)

if TYPE_CHECKING:
    from tests.support.fake_kube import FakeKube


class Events:
    """The handlers that create Events, over ``fake``'s store."""

    def __init__(self, fake: FakeKube) -> None:
        self._fake = fake

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/v1" + NAMESPACED + "/events", self._create_core_event)
        events = "/apis/events.k8s.io/v1" + NAMESPACED + "/events"
        router.add_post(events, self._create_events_event)

    async def _create_core_event(self, request: web.Request) -> web.Response:
        event = await json_body(request)
        check_namespace(event, request.match_info["ns"])
        if not event.get("involvedObject"):
            raise invalid("Event", "involvedObject", "Required value")
        return self._create_event(event, "events")

    async def _create_events_event(self, request: web.Request) -> web.Response:
        event = await json_body(request)
        ns = request.match_info["ns"]
        check_namespace(event, ns)
        if objects.parse_micro_time(event.get("eventTime")) is None:
            raise ApiError(400, f"eventTime: not a MicroTime: {event.get('eventTime')!r}")
        for key in ("reportingController", "reportingInstance", "action", "reason"):
            if not event.get(key):
                raise invalid("Event.events.k8s.io", key, "Required value")
        if event.get("type") not in ("Normal", "Warning"):
            raise invalid("Event.events.k8s.io", "type", "Unsupported value")
        if len(event.get("note") or "") > 1024:
            raise invalid("Event.events.k8s.io", "note", "Too long")
        if (event.get("regarding") or {}).get("namespace", ns) != ns:
            raise invalid("Event.events.k8s.io", "regarding.namespace", "does not match")
        return self._create_event(event, "events.events.k8s.io")

    def _create_event(self, event: dict[str, Any], resource: str) -> web.Response:
        meta = event["metadata"]
        if not meta.get("name"):
            raise invalid(resource, "metadata.name", "Required value")
        if ("events", meta["namespace"], meta["name"]) in self._fake.objects:
            raise already_exists(resource, meta["name"])
        meta["creationTimestamp"] = objects.time_str(datetime.now().astimezone())
        stored = self._fake._store("events", event)
        self._fake.events.append(stored)
        return web.json_response(stored, status=201)
