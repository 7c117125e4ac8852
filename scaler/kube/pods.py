"""Kubernetes pods, as the apiserver's JSON, as the policy engine's ``Pod``.

The pods come straight from the JSON of a pod list, not through kubernetes-asyncio's
generated models: building ``V1Pod`` objects (and parsing every timestamp with
dateutil) cost most of ``scaler run``'s CPU with many targets.

Times become unix seconds; CPU requests become cores, summed over the containers the
way the HPA's ``calculatePodRequests`` does: whole millicores per container (a
quantity is rounded up, as ``Quantity.MilliValue`` does), and no total at all when a
counted container has no CPU request (the HPA then cannot compute utilization).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from scaler.kube.microtime import parse_time
from scaler.kube.workload import DELETION_COST_ANNOTATION
from scaler.policy import Pod, PodPhase
from scaler.quantity import parse_quantity


def pod_from_json(obj: Mapping[str, Any], *, container: str | None = None) -> Pod:
    """The engine's view of the pod ``obj``; ``container`` counts only that container's request.

    Raises ValueError on a timestamp that is not RFC 3339.
    """
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    ready: bool | None = None
    ready_transition: float | None = None
    unschedulable: str | None = None
    for condition in status.get("conditions") or ():
        kind = condition.get("type")
        if kind == "Ready":
            ready = condition.get("status") == "True"  # "Unknown" is not ready, as in HPA
            ready_transition = unix_seconds(condition.get("lastTransitionTime"))
        elif kind == "PodScheduled" and _unschedulable(condition):
            unschedulable = str(condition.get("message") or "no node can run it")
    return Pod(
        name=metadata.get("name") or "",
        phase=_phase(status.get("phase")),
        ready=ready,
        ready_transition_time=ready_transition,
        start_time=unix_seconds(status.get("startTime")),
        deleting=metadata.get("deletionTimestamp") is not None,
        request=cpu_request(obj.get("spec"), container=container),
        unschedulable=unschedulable,
    )


def _unschedulable(condition: Mapping[str, Any]) -> bool:
    """The scheduler found no node (``PodReasonUnschedulable``); other reasons, such as
    ``SchedulingGated``, are waits the pod's owner chose, not a lack of room."""
    return condition.get("status") == "False" and condition.get("reason") == "Unschedulable"


def pod_ip(obj: Mapping[str, Any]) -> str | None:
    """``status.podIP``, once the pod has one."""
    status = obj.get("status") or {}
    ip = status.get("podIP")
    return ip if isinstance(ip, str) and ip else None


def deletion_cost(obj: Mapping[str, Any]) -> str | None:
    """The pod's ``controller.kubernetes.io/pod-deletion-cost`` as written, if set."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(DELETION_COST_ANNOTATION)
    return value if isinstance(value, str) else None


def cpu_request(spec: Mapping[str, Any] | None, *, container: str | None = None) -> float | None:
    """Summed CPU requests in cores of the (named) containers; None if one lacks it.

    Also None when no container is counted (``container`` names none of them) or a
    request is not a quantity we can read.
    """
    containers = (spec.get("containers") if spec else None) or ()
    counted = [c for c in containers if container in (None, c.get("name"))]
    if not counted:
        return None
    millicores = 0
    for item in counted:
        requests = (item.get("resources") or {}).get("requests") or {}
        value = requests.get("cpu")
        if value is None:
            return None
        try:
            cores = parse_quantity(str(value))  # a quantity is a string on the wire
        except ValueError:
            return None
        millicores += math.ceil(round(cores * 1000, 6))
    return millicores / 1000


def unix_seconds(text: str | None) -> float | None:
    """An RFC 3339 timestamp from the API as unix seconds (see ``parse_time``)."""
    return None if text is None else parse_time(text).timestamp()


def _phase(phase: str | None) -> PodPhase:
    # An empty or unknown phase is neither Pending nor Failed to the HPA.
    try:
        return PodPhase(phase or "Unknown")
    except ValueError:
        return PodPhase.UNKNOWN
