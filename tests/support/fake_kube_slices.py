"""EndpointSlices as the EndpointSlice controller writes them, for the fake API server
(``tests/support/fake_kube_watch.py`` stores and watches them)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from typing import Any

from tests.support import fake_kube_objects as objects

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
