"""Kubernetes objects for the fake API server, in the JSON shapes the real one serves.

Builders for the seeded objects (complete enough that kubernetes-asyncio's model
validation accepts them), label selectors (formatting and matching), and the two time
formats: ``Time`` (RFC 3339, whole seconds) and ``MicroTime`` (exactly six fractional
digits, which the real apiserver insists on when it decodes a Lease or an Event).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
"""A fixed creationTimestamp for seeded objects."""

MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")


def time_str(moment: datetime) -> str:
    """``metav1.Time`` as served: RFC 3339 in UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time_str(moment: datetime) -> str:
    """``metav1.MicroTime`` as served: RFC 3339 in UTC with six fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: object) -> datetime | None:
    """A MicroTime field as the apiserver decodes it; None when it is not valid."""
    if not isinstance(text, str) or not MICRO_TIME.match(text):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class SelectorError(ValueError):
    """A label selector the apiserver would reject (400 BadRequest)."""


def format_selector(selector: Mapping[str, Any]) -> str:
    """``metav1.FormatLabelSelector``: a LabelSelector as the scale's ``status.selector``."""
    parts: list[tuple[str, str]] = [
        (key, f"{key}={value}") for key, value in (selector.get("matchLabels") or {}).items()
    ]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], sorted(expr.get("values") or [])
        text = {
            "In": f"{key} in ({','.join(values)})",
            "NotIn": f"{key} notin ({','.join(values)})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }[op]
        parts.append((key, text))
    return ",".join(text for _, text in sorted(parts))


_SET_BASED = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQUALITY = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Requirement:
    """One label requirement: ``op`` is =, !=, in, notin, exists or !exists."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def __call__(self, labels: Labels) -> bool:
        value = labels.get(self.key)
        match self.op:
            case "=" | "==" | "in":
                return value in self.values
            case "!=" | "notin":
                return value not in self.values
            case "exists":
                return self.key in labels
            case _:
                return self.key not in labels


def parse_selector(text: str) -> list[Requirement]:
    """A ``labelSelector`` query parameter as requirements (all must hold).

    Equality-based (``k=v``, ``k==v``, ``k!=v``) and set-based (``k in (a,b)``,
    ``k notin (a)``, ``k``, ``!k``); anything else raises SelectorError.
    """
    requirements: list[Requirement] = []
    for part in _split_outside_parentheses(text):
        if not part.strip():
            continue
        if match := _SET_BASED.match(part):
            key, op, raw = match.groups()
            values = frozenset(v.strip() for v in raw.split(",") if v.strip())
            requirements.append(Requirement(key, op, values))
        elif match := _EQUALITY.match(part):
            key, op, value = match.groups()
            requirements.append(Requirement(key, op, frozenset({value})))
        elif match := _EXISTS.match(part):
            negate, key = match.groups()
            requirements.append(Requirement(key, "!exists" if negate else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")
    return requirements


def _split_outside_parentheses(text: str) -> list[str]:
    parts: list[str] = []
    depth, current = 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def deployment(
    namespace: str,
    name: str,
    *,
    replicas: int,
    status_replicas: int,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    container: str,
    cpu: str | None,
    selector: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An apps/v1 Deployment whose pods carry ``labels``.

    Its ``spec.selector`` is ``selector`` (a LabelSelector), by default
    ``matchLabels: labels``.
    """
    resources = {"requests": {"cpu": cpu}} if cpu is not None else {}
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 1,
            "creationTimestamp": time_str(EPOCH),
            "labels": dict(labels),
            "annotations": dict(annotations),
        },
        "spec": {
            "replicas": replicas,
            "selector": dict(selector) if selector else {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {"name": container, "image": "ollama/ollama", "resources": resources}
                    ]
                },
            },
            "strategy": {"type": "RollingUpdate"},
        },
        "status": {"observedGeneration": 1, "replicas": status_replicas},
    }


def pod(
    namespace: str,
    name: str,
    *,
    labels: Mapping[str, str],
    phase: str,
    ready: bool | None,
    ready_since: datetime | None,
    start_time: datetime | None,
    containers: Mapping[str, str | None],
    deleting: bool,
    ip: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Pod; ``containers`` maps each container's name to its CPU request."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "creationTimestamp": time_str(start_time or EPOCH),
        "labels": dict(labels),
    }
    if deleting:
        metadata["deletionTimestamp"] = time_str(EPOCH)
        metadata["deletionGracePeriodSeconds"] = 30
    status: dict[str, Any] = {"phase": phase}
    if ip is not None:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if start_time is not None:
        status["startTime"] = time_str(start_time)
    if ready is not None:
        since = time_str(ready_since or start_time or EPOCH)
        status["conditions"] = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": since},
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": since},
        ]
    specs = [
        {
            "name": container,
            "image": "ollama/ollama",
            "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}
            if cpu is not None
            else {"requests": {"memory": "1Gi"}},
        }
        for container, cpu in containers.items()
    ]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": {"containers": specs, "restartPolicy": "Always"},
        "status": status,
    }


def hpa(
    namespace: str,
    name: str,
    *,
    target_kind: str,
    target_name: str,
    target_api_version: str,
) -> dict[str, Any]:
    """An autoscaling/v2 HorizontalPodAutoscaler on CPU utilization.

    An empty ``target_api_version`` leaves ``scaleTargetRef.apiVersion`` out.
    """
    return {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v2",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": time_str(EPOCH)},
        "spec": {
            "scaleTargetRef": {"kind": target_kind, "name": target_name}
            | ({"apiVersion": target_api_version} if target_api_version else {}),
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
        "status": {"currentReplicas": 1, "desiredReplicas": 1},
    }


def lease(
    namespace: str,
    name: str,
    *,
    holder: str | None,
    duration: int | None,
    renew_time: datetime | None,
    acquire_time: datetime | None,
    transitions: int | None,
) -> dict[str, Any]:
    """A coordination.k8s.io/v1 Lease; None fields are left out, as the API does."""
    spec: dict[str, Any] = {
        "holderIdentity": holder,
        "leaseDurationSeconds": duration,
        "acquireTime": micro_time_str(acquire_time) if acquire_time else None,
        "renewTime": micro_time_str(renew_time) if renew_time else None,
        "leaseTransitions": transitions,
    }
    return {
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": time_str(EPOCH)},
        "spec": {key: value for key, value in spec.items() if value is not None},
    }
