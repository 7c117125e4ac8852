"""The ``Actuator`` on kubernetes-asyncio: read a Deployment, scale it, record Events.

Scaling goes through the Deployment's ``scale`` subresource, as the HPA's does: it is
the one thing RBAC has to allow (``deployments/scale``: get, patch), and a write to it
cannot touch the rest of the Deployment.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes_asyncio.client import (
    ApiClient,
    AppsV1Api,
    AutoscalingV2Api,
    CoreV1Api,
    EventsV1Api,
    V1Deployment,
    V1Scale,
    V2HorizontalPodAutoscaler,
)

from scaler.kube.base import Conflict, KubeError, Workload
from scaler.kube.calls import call
from scaler.kube.microtime import micro_time
from scaler.kube.pods import pod_from_v1
from scaler.policy import Pod

SCALE_ATTEMPTS = 3
"""PATCHes of the scale before ``scale`` gives up on 409 Conflict and raises Conflict."""
REPORTING_CONTROLLER = "scaler"
"""``reportingController`` of the Events scaler records."""
EVENT_ACTION = "Scale"
"""``action`` of every Event: all of them are about scaling the Deployment."""
_NOTE_LIMIT = 1024  # events.k8s.io/v1 rejects a longer note

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the last observe or scale learned about a Deployment, for the next call."""

    uid: str | None
    version: str | None  # the scale's resourceVersion, the precondition of our next PATCH


class KubeActuator:
    """Reads and scales Deployments and records Events, over ``api_client``.

    ``request_timeout``: seconds each API call may take before it fails with KubeError.
    ``container``: count only this container's CPU request in a pod's ``request``
    (None: all containers, as an HPA without a container metric does).
    ``instance``: ``reportingInstance`` of Events (default: this host's name, which
    in a pod is the pod's name).
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        request_timeout: float,
        container: str | None = None,
        instance: str | None = None,
    ) -> None:
        self._apps = AppsV1Api(api_client)
        self._core = CoreV1Api(api_client)
        self._autoscaling = AutoscalingV2Api(api_client)
        self._events = EventsV1Api(api_client)
        self._timeout = request_timeout
        self._container = container
        self._instance = instance or socket.gethostname()
        self._seen: dict[tuple[str, str], _Seen] = {}

    async def observe(self, namespace: str, deployment: str) -> Workload:
        """The Deployment's scale, pods, annotations and any HPA targeting it.

        The Deployment, its scale (then the pods its selector matches) and the HPAs
        are read concurrently, each call within ``request_timeout``.
        """
        read, scaled, hpa = await asyncio.gather(
            self._read_deployment(namespace, deployment),
            self._read_scale_and_pods(namespace, deployment),
            self._conflicting_hpa(namespace, deployment),
            return_exceptions=True,
        )
        # All three have finished; the first failure in this order wins.
        found = _unwrap(read)
        scale, pods = _unwrap(scaled)
        conflicting_hpa = _unwrap(hpa)
        metadata = found.metadata
        self._seen[(namespace, deployment)] = _Seen(
            metadata.uid if metadata else None,
            scale.metadata.resource_version if scale.metadata else None,
        )
        return Workload(
            spec_replicas=(scale.spec.replicas if scale.spec else None) or 0,
            status_replicas=scale.status.replicas if scale.status else 0,
            pods=pods,
            annotations=dict((metadata.annotations if metadata else None) or {}),
            conflicting_hpa=conflicting_hpa,
        )

    async def _read_deployment(self, namespace: str, deployment: str) -> V1Deployment:
        return await call(
            f"read deployment {namespace}/{deployment}",
            self._apps.read_namespaced_deployment(deployment, namespace),
            timeout=self._timeout,
        )

    async def _read_scale(self, namespace: str, deployment: str) -> V1Scale:
        return await call(
            f"read scale of deployment {namespace}/{deployment}",
            self._apps.read_namespaced_deployment_scale(deployment, namespace),
            timeout=self._timeout,
        )

    async def _read_scale_and_pods(
        self, namespace: str, deployment: str
    ) -> tuple[V1Scale, tuple[Pod, ...]]:
        scale = await self._read_scale(namespace, deployment)
        selector = scale.status.selector if scale.status else None
        if not selector:  # an empty selector would match every pod in the namespace
            raise KubeError(f"deployment {namespace}/{deployment}: its scale has no selector")
        listed = await call(
            f"list pods of deployment {namespace}/{deployment} ({selector})",
            self._core.list_namespaced_pod(namespace, label_selector=selector),
            timeout=self._timeout,
        )
        pods = tuple(pod_from_v1(pod, container=self._container) for pod in listed.items or [])
        return scale, pods

    async def _conflicting_hpa(self, namespace: str, deployment: str) -> str | None:
        listed = await call(
            f"list horizontalpodautoscalers in {namespace}",
            self._autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace),
            timeout=self._timeout,
        )
        names = sorted(hpa.metadata.name for hpa in listed.items or [] if _targets(hpa, deployment))
        return names[0] if names else None

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        """Set ``spec.replicas`` through the scale subresource.

        The PATCH carries the resourceVersion last seen (by ``observe`` or the last
        scale), so a scale changed meanwhile answers 409; then the scale is read again
        and the PATCH retried on that fresh version, ``SCALE_ATTEMPTS`` times in all
        before Conflict. 403 raises Forbidden, 404 NotFound, other failures KubeError.
        """
        key = (namespace, deployment)
        seen = self._seen.get(key, _Seen(None, None))
        self._seen[key] = _Seen(seen.uid, None)  # a version is good for one write only
        version, conflict = seen.version, None
        for _ in range(SCALE_ATTEMPTS):
            if version is None:
                current = await self._read_scale(namespace, deployment)
                version = current.metadata.resource_version if current.metadata else None
            body: Any = {"metadata": {"resourceVersion": version}, "spec": {"replicas": replicas}}
            try:
                result = await call(
                    f"scale deployment {namespace}/{deployment} to {replicas}",
                    self._apps.patch_namespaced_deployment_scale(deployment, namespace, body),
                    timeout=self._timeout,
                )
            except KubeError as err:
                if err.status != 409:
                    raise
                version, conflict = None, err
                continue
            new_version = result.metadata.resource_version if result.metadata else None
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
        await call(
            f"record event {reason} on deployment {namespace}/{deployment}",
            self._events.create_namespaced_event(namespace, body),
            timeout=self._timeout,
        )


def _unwrap(result: T | BaseException) -> T:
    if isinstance(result, BaseException):
        raise result
    return result


def _targets(hpa: V2HorizontalPodAutoscaler, deployment: str) -> bool:
    """Whether the HPA scales this Deployment (apps group, or no group given)."""
    ref = hpa.spec.scale_target_ref if hpa.spec else None
    if ref is None:
        return False
    group = (ref.api_version or "").rpartition("/")[0]  # "apps/v1" → "apps", "v1" → ""
    return ref.kind == "Deployment" and ref.name == deployment and group in ("apps", "")


def _event_name(deployment: str) -> str:
    # client-go names Events "<object>.<unique hex>"; object names may be 253 long.
    return f"{deployment[:236]}.{uuid.uuid4().hex[:16]}"
