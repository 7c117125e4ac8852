"""A Deployment, its pods and the HPAs of its namespace, as JSON, made into a ``Workload``.

Pure functions of the apiserver's objects: the polling ``KubeActuator.observe`` feeds
them the answers of a GET and a LIST, the watch-fed caches (``scaler.kube.cache``) the
objects they hold, so both paths see a Deployment the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scaler.kube.errors import KubeError
from scaler.kube.pods import deletion_cost, pod_from_json, pod_ip
from scaler.kube.selector import label_selector
from scaler.kube.workload import Workload


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """The fields of a Deployment that ``observe`` reads."""

    spec_replicas: int
    status_replicas: int
    selector: str  # spec.selector as a labelSelector string, as its scale's status.selector
    annotations: dict[str, str]
    uid: str | None
    version: str | None  # metadata.resourceVersion, which its scale subresource shares


def deployment_view(obj: Mapping[str, Any]) -> DeploymentView:
    """An apps/v1 Deployment's JSON, read as its scale subresource would serve it.

    Raises KeyError when ``metadata`` or ``spec`` is missing, ValueError on a selector
    operator the apiserver would not have accepted.
    """
    metadata, spec, status = obj["metadata"], obj["spec"], obj.get("status") or {}
    return DeploymentView(
        spec_replicas=spec.get("replicas") or 0,
        status_replicas=status.get("replicas") or 0,  # left out when 0
        selector=label_selector(spec.get("selector")),
        annotations=dict(metadata.get("annotations") or {}),
        uid=metadata.get("uid"),
        version=metadata.get("resourceVersion"),
    )


def require_selector(found: DeploymentView, namespace: str, deployment: str) -> None:
    """KubeError when the Deployment's ``spec.selector`` is empty: it would match every
    pod in the namespace."""
    if not found.selector:
        raise KubeError(f"deployment {namespace}/{deployment}: its spec.selector is empty")


def workload_of(
    deployment: DeploymentView,
    pods: Iterable[Mapping[str, Any]],
    *,
    conflicting_hpa: str | None,
    container: str | None,
    what: str,
) -> Workload:
    """The ``Workload`` of ``deployment`` with ``pods`` (the pods its selector matches,
    as JSON); ``container`` counts only that container's CPU request in a pod's.

    A pod the engine cannot read (a timestamp that is not RFC 3339, a field of the
    wrong type) raises KubeError naming ``what`` ("observe deployment ml/ollama"), as
    a malformed answer of the API does.
    """
    items = list(pods)
    try:
        parsed = tuple(pod_from_json(p, container=container) for p in items)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise KubeError(f"{what}: malformed pod: {type(err).__name__}: {err}") from err
    named = list(zip(parsed, items, strict=True))
    return Workload(
        spec_replicas=deployment.spec_replicas,
        status_replicas=deployment.status_replicas,
        pods=parsed,
        annotations=deployment.annotations,
        conflicting_hpa=conflicting_hpa,
        pod_ips={pod.name: ip for pod, p in named if (ip := pod_ip(p))},
        deletion_costs={
            pod.name: cost for pod, p in named if (cost := deletion_cost(p)) is not None
        },
    )
