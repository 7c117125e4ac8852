"""Kubernetes pods (kubernetes-asyncio ``V1Pod``) as the policy engine's ``Pod``.

Times become unix seconds; CPU requests become cores, summed over the containers the
way the HPA's ``calculatePodRequests`` does: whole millicores per container (a
quantity is rounded up, as ``Quantity.MilliValue`` does), and no total at all when a
counted container has no CPU request (the HPA then cannot compute utilization).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from kubernetes_asyncio.client import V1Pod, V1PodSpec

from scaler.policy import Pod, PodPhase
from scaler.quantity import parse_quantity


def pod_from_v1(pod: V1Pod, *, container: str | None = None) -> Pod:
    """The engine's view of ``pod``; ``container`` counts only that container's request."""
    metadata, status = pod.metadata, pod.status
    ready: bool | None = None
    ready_transition: float | None = None
    for condition in (status.conditions if status else None) or []:
        if condition.type == "Ready":
            ready = condition.status == "True"  # "Unknown" counts as not ready, as in HPA
            ready_transition = unix_seconds(condition.last_transition_time)
    return Pod(
        name=metadata.name if metadata else "",
        phase=_phase(status.phase if status else None),
        ready=ready,
        ready_transition_time=ready_transition,
        start_time=unix_seconds(status.start_time if status else None),
        deleting=bool(metadata and metadata.deletion_timestamp is not None),
        request=cpu_request(pod.spec, container=container),
    )


def cpu_request(spec: V1PodSpec | None, *, container: str | None = None) -> float | None:
    """Summed CPU requests in cores of the (named) containers; None if one lacks it.

    Also None when no container is counted (``container`` names none of them) or a
    request is not a quantity we can read.
    """
    counted = [c for c in (spec.containers if spec else None) or [] if container in (None, c.name)]
    if not counted:
        return None
    millicores = 0
    for item in counted:
        requests = item.resources.requests if item.resources else None
        value = (requests or {}).get("cpu")
        if value is None:
            return None
        try:
            cores = parse_quantity(value)
        except ValueError:
            return None
        millicores += math.ceil(round(cores * 1000, 6))
    return millicores / 1000


def unix_seconds(moment: datetime | None) -> float | None:
    """A timestamp from the API as unix seconds (a naive one is taken as UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _phase(phase: str | None) -> PodPhase:
    # An empty or unknown phase is neither Pending nor Failed to the HPA.
    try:
        return PodPhase(phase or "Unknown")
    except ValueError:
        return PodPhase.UNKNOWN
