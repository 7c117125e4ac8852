"""A coordination.k8s.io/v1 Lease as JSON, and the leader-election record in its spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scaler.kube.microtime import micro_time, parse_time

Lease = Mapping[str, Any]
"""A coordination.k8s.io/v1 Lease as the API server sends it (JSON)."""
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The Lease's spec as leader election reads it (client-go's LeaderElectionRecord)."""

    holder: str = ""
    duration: int | None = None
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0

    @classmethod
    def of(cls, lease: Lease) -> LeaseRecord:
        """The record of a Lease's JSON; ValueError if a time is not RFC 3339."""
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            duration=spec.get("leaseDurationSeconds"),
            acquire_time=_time(spec.get("acquireTime")),
            renew_time=_time(spec.get("renewTime")),
            transitions=spec.get("leaseTransitions") or 0,
        )


def spec_of(record: LeaseRecord) -> dict[str, Any]:
    """The Lease spec on the wire, times as MicroTime strings."""
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time is not None:
        spec["acquireTime"] = micro_time(record.acquire_time)
    if record.renew_time is not None:
        spec["renewTime"] = micro_time(record.renew_time)
    return spec


def checked_lease(answer: Any) -> Lease:
    """The answer, if it is a Lease whose record reads (else ValueError: a malformed
    answer, as the generated model's failed parse was)."""
    if not isinstance(answer, dict):
        raise ValueError(f"malformed answer: not an object but {type(answer).__name__}")
    LeaseRecord.of(answer)
    return answer


def _time(value: Any) -> datetime | None:
    """A MicroTime (RFC 3339) of the Lease's spec, None when absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"malformed time {value!r}: not a string")
    return parse_time(value)
