"""What the controller needs from Kubernetes, as small Protocols and plain data: the
Deployment as observed (``Workload``), the actuator that observes and scales it, and
the pod annotator that marks scale-down victims."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from scaler.policy import Pod

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
"""On a pod: the ReplicaSet deletes the pods with the lowest value first (among pods
equally ready; upstream ``ActivePodsWithRanks``). An int32 as a string."""


@dataclass(frozen=True, slots=True)
class Workload:
    """A Deployment as the controller sees it at one moment.

    ``spec_replicas``/``status_replicas``: from its scale subresource.
    ``pods``: the pods its selector matches, as the policy engine reads them
    (times in unix seconds, CPU requests in cores).
    ``annotations``: the Deployment's annotations (pause and pin live here).
    ``conflicting_hpa``: the name of an HPA that targets this Deployment, if any.
    ``pod_ips``: pod name to IP, for pods that have one (to read their proxies).
    ``deletion_costs``: pod name to its ``DELETION_COST_ANNOTATION``, where set.
    """

    spec_replicas: int
    status_replicas: int
    pods: tuple[Pod, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    conflicting_hpa: str | None = None
    pod_ips: Mapping[str, str] = field(default_factory=dict)
    deletion_costs: Mapping[str, str] = field(default_factory=dict)


class Actuator(Protocol):
    """Reads and scales Deployments, and records Events on them."""

    async def observe(self, namespace: str, deployment: str) -> Workload:
        """The Deployment's scale, pods, annotations and any HPA targeting it."""
        ...

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        """Set ``spec.replicas`` through the scale subresource (retrying conflicts)."""
        ...

    async def event(
        self, namespace: str, deployment: str, *, reason: str, message: str, warning: bool = False
    ) -> None:
        """Record a Kubernetes Event on the Deployment."""
        ...


class PodAnnotator(Protocol):
    """Sets annotations on pods (the deletion cost before a scale-down)."""

    async def annotate_pod(self, namespace: str, pod: str, annotations: Mapping[str, str]) -> None:
        """Merge ``annotations`` into the pod's; raises KubeError on failure."""
        ...
