"""The ``Actuator`` on kubernetes-asyncio: read a Deployment, scale it, record Events.

Scaling goes through the Deployment's ``scale`` subresource, as the HPA's does: it is
the one write RBAC has to allow (``deployments/scale``: get, patch), and a write to it
cannot touch the rest of the Deployment. ``observe`` reads the Deployment itself rather
than also its scale: the scale is a view of the Deployment's ``spec.replicas``,
``status.replicas`` and ``spec.selector``, with the same resourceVersion, so the
Deployment's resourceVersion is the precondition of the next scale PATCH.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client import ApiClient

from scaler.kube.api_call import STRATEGIC_MERGE_PATCH, call_json, send
from scaler.kube.errors import Conflict, KubeError
from scaler.kube.hpas import HPA_REFRESH, HpaCache
from scaler.kube.microtime import micro_time
from scaler.kube.observed import DeploymentView, deployment_view, require_selector, workload_of
from scaler.kube.workload import Workload

SCALE_ATTEMPTS = 3
"""PATCHes of the scale before ``scale`` gives up on 409 Conflict and raises Conflict."""
REPORTING_CONTROLLER = "scaler"
"""``reportingController`` of the Events scaler records."""
EVENT_ACTION = "Scale"
"""``action`` of every Event: all of them are about scaling the Deployment."""
_NOTE_LIMIT = 1024  # events.k8s.io/v1 rejects a longer note
_DEPLOYMENT = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
_POD = "/api/v1/namespaces/{namespace}/pods/{name}"
_EVENTS = "/apis/events.k8s.io/v1/namespaces/{namespace}/events"


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the last observe or scale learned about a Deployment, for the next call."""

    uid: str | None
    version: str | None  # the Deployment's (= its scale's) resourceVersion, for the next PATCH


class KubeActuator:
    """Reads and scales Deployments and records Events, over ``api_client``.

    ``request_timeout``: seconds each API call may take before it fails with KubeError.
    ``container``: count only this container's CPU request in a pod's ``request``
    (None: all containers, as an HPA without a container metric does).
    ``instance``: ``reportingInstance`` of Events (default: this host's name, which
    in a pod is the pod's name).
    ``hpa_refresh``: seconds between two lists of a namespace's HPAs, shared by all
    targets in it (see ``scaler.kube.hpas``): an HPA created meanwhile is reported
    within that time. ``clock``: monotonic seconds, for that period (injectable).
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        request_timeout: float,
        container: str | None = None,
        instance: str | None = None,
        hpa_refresh: float = HPA_REFRESH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api_client
        self._hpas = HpaCache(
            api_client, request_timeout=request_timeout, refresh=hpa_refresh, clock=clock
        )
        self._timeout = request_timeout
        self._container = container
        self._instance = instance or socket.gethostname()
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._written: dict[tuple[str, str], int] = {}

    def with_container(self, container: str | None) -> KubeActuator:
        """This actuator, counting only ``container``'s CPU request in a pod's
        ``request`` (a target's ``container`` key); the API client, the HPA list and
        what was seen are shared."""
        view = copy.copy(self)
        view._container = container
        return view

    async def observe(self, namespace: str, deployment: str) -> Workload:
        """The Deployment's replicas, pods, annotations and any HPA targeting it.

        Two requests, one after the other: the Deployment, then the pods its
        ``spec.selector`` matches, each within ``request_timeout``. The HPAs come from
        the namespace's shared list; when that is due for a refresh, it is listed
        meanwhile. Both reads skip kubernetes-asyncio's models (they were most of
        ``scaler run``'s CPU): the JSON goes straight to our types.
        """
        hpas = self._hpas.lookup(namespace)
        found = await self._read_deployment(namespace, deployment)
        require_selector(found, namespace, deployment)
        pods = await call_json(
            f"list pods of deployment {namespace}/{deployment} ({found.selector})",
            send(
                self._api,
                "GET",
                "/api/v1/namespaces/{namespace}/pods",
                path_params={"namespace": namespace},
                query=[("labelSelector", found.selector)],
            ),
            timeout=self._timeout,
            decode=lambda listed: list(listed.get("items") or ()),
        )
        conflicting_hpa = (await asyncio.shield(hpas)).get(deployment)
        self._saw(namespace, deployment, found)
        return workload_of(
            found,
            pods,
            conflicting_hpa=conflicting_hpa,
            container=self._container,
            what=f"list pods of deployment {namespace}/{deployment}",
        )

    def _saw(self, namespace: str, deployment: str, found: DeploymentView) -> None:
        """Keep what ``observe`` read for the next ``scale`` (its precondition) and
        ``event`` (the uid)."""
        self._seen[(namespace, deployment)] = _Seen(found.uid, found.version)

    def written(self, namespace: str, deployment: str) -> int | None:
        """The replicas of our last successful scale PATCH of the Deployment, if any:
        a watch that reports them is our own write coming back, not someone else's."""
        return self._written.get((namespace, deployment))

    async def _read_deployment(self, namespace: str, deployment: str) -> DeploymentView:
        return await call_json(
            f"read deployment {namespace}/{deployment}",
            send(self._api, "GET", _DEPLOYMENT, path_params=_where(namespace, deployment)),
            timeout=self._timeout,
            decode=deployment_view,
        )

    async def annotate_pod(self, namespace: str, pod: str, annotations: Mapping[str, str]) -> None:
        """A (strategic) merge PATCH of the pod's annotations (RBAC: ``pods``, ``patch``);
        raises Forbidden, NotFound (the pod is gone) or KubeError."""
        body: Any = {"metadata": {"annotations": dict(annotations)}}
        await call_json(
            f"annotate pod {namespace}/{pod}",
            send(
                self._api,
                "PATCH",
                _POD,
                path_params=_where(namespace, pod),
                body=body,
                content_type=STRATEGIC_MERGE_PATCH,
            ),
            timeout=self._timeout,
            decode=lambda _: None,
        )

    async def _read_scale_version(self, namespace: str, deployment: str) -> str | None:
        return await call_json(
            f"read scale of deployment {namespace}/{deployment}",
            send(
                self._api, "GET", _DEPLOYMENT + "/scale", path_params=_where(namespace, deployment)
            ),
            timeout=self._timeout,
            decode=_resource_version,
        )

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        """Set ``spec.replicas`` through the scale subresource.

        The PATCH carries the resourceVersion last seen (the Deployment's, by ``observe``,
        which its scale shares; or the last scale's), so a Deployment changed meanwhile
        (any write, status included) answers 409; then the scale is read again
        and the PATCH retried on that fresh version, ``SCALE_ATTEMPTS`` times in all
        before Conflict. 403 raises Forbidden, 404 NotFound, other failures KubeError.
        """
        key = (namespace, deployment)
        # Known as ours before the PATCH is sent: a watch may report the change before
        # the PATCH's answer arrives. A failed PATCH wrote nothing of ours.
        previous = self._written.get(key)
        self._written[key] = replicas
        try:
            await self._patch_scale(namespace, deployment, replicas)
        except BaseException:
            self._written.pop(key, None)
            if previous is not None:
                self._written[key] = previous
            raise

    async def _patch_scale(self, namespace: str, deployment: str, replicas: int) -> None:
        key = (namespace, deployment)
        seen = self._seen.get(key, _Seen(None, None))
        self._seen[key] = _Seen(seen.uid, None)  # a version is good for one write only
        version, conflict = seen.version, None
        for _ in range(SCALE_ATTEMPTS):
            if version is None:
                version = await self._read_scale_version(namespace, deployment)
            body: Any = {"metadata": {"resourceVersion": version}, "spec": {"replicas": replicas}}
            try:
                new_version = await call_json(
                    f"scale deployment {namespace}/{deployment} to {replicas}",
                    send(
                        self._api,
                        "PATCH",
                        _DEPLOYMENT + "/scale",
                        path_params=_where(namespace, deployment),
                        body=body,
                        content_type=STRATEGIC_MERGE_PATCH,
                    ),
                    timeout=self._timeout,
                    decode=_resource_version,
                )
            except KubeError as err:
                if err.status != 409:
                    raise
                version, conflict = None, err
                continue
            self._seen[key] = _Seen(seen.uid, new_version)
            return
        raise Conflict(
            f"scale deployment {namespace}/{deployment} to {replicas}: the scale kept "
            f"changing (409 Conflict on {SCALE_ATTEMPTS} attempts)",
            status=409,
        ) from conflict

    async def event(
        self, namespace: str, deployment: str, *, reason: str, message: str, warning: bool = False
    ) -> None:
        """Record an events.k8s.io/v1 Event regarding the Deployment.

        It carries the Deployment's uid once ``observe`` has seen it, which is what
        ``kubectl describe deployment`` matches Events by. Raises KubeError on failure
        (callers usually log it and carry on).
        """
        seen = self._seen.get((namespace, deployment))
        regarding = {"apiVersion": "apps/v1", "kind": "Deployment"}
        regarding |= {"name": deployment, "namespace": namespace}
        if seen is not None and seen.uid:
            regarding["uid"] = seen.uid
        body: Any = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": _event_name(deployment), "namespace": namespace},
            "eventTime": micro_time(datetime.now(UTC)),
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self._instance,
            "action": EVENT_ACTION,
            "reason": reason,
            "note": message[:_NOTE_LIMIT],
            "type": "Warning" if warning else "Normal",
            "regarding": regarding,
        }
        await call_json(
            f"record event {reason} on deployment {namespace}/{deployment}",
            send(self._api, "POST", _EVENTS, path_params={"namespace": namespace}, body=body),
            timeout=self._timeout,
            decode=lambda _: None,
        )


def _where(namespace: str, name: str) -> dict[str, str]:
    return {"namespace": namespace, "name": name}


def _resource_version(obj: Mapping[str, Any]) -> str | None:
    version: str | None = (obj.get("metadata") or {}).get("resourceVersion")
    return version


def _event_name(deployment: str) -> str:
    # client-go names Events "<object>.<unique hex>"; object names may be 253 long.
    return f"{deployment[:236]}.{uuid.uuid4().hex[:16]}"
