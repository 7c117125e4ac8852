"""EndpointSlices (their JSON) as the router's ``Endpoint`` snapshot: pure functions.

Each slice endpoint becomes an ``Endpoint``. URL: ``http://ADDRESS:PORT``, the first
address (IPv6 in brackets) and the slice's port named ``port_name`` (or its only
port). Key: ``targetRef.name`` for a Pod, else the address. State, with the API's
defaults for a missing (nil) condition (ready: true, terminating: false): terminating
→ TERMINATING; else ready → READY; else NOT_READY. ``serving`` does not change the
state: a terminating pod gets no new request whether or not it still serves. See
docs/router-discovery.md for when the EndpointSlice controller sets each condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scaler.errors import ScalerError
from scaler.router.endpoints import Endpoint, EndpointState

_CAUTION = {EndpointState.READY: 0, EndpointState.NOT_READY: 1, EndpointState.TERMINATING: 2}


class SliceError(ScalerError):
    """An EndpointSlice whose endpoints cannot be reached: its message names the slice,
    the field and the value."""


def endpoint_state(conditions: Mapping[str, Any]) -> EndpointState:
    """The routing state of one endpoint's ``conditions`` (nil ready: true; nil
    terminating: false, as discovery.k8s.io/v1 documents them)."""
    if conditions.get("terminating") is True:
        return EndpointState.TERMINATING
    if conditions.get("ready") is not False:
        return EndpointState.READY
    return EndpointState.NOT_READY


def slice_endpoints(obj: Mapping[str, Any], port_name: str | None) -> list[Endpoint]:
    """The endpoints of one EndpointSlice (its JSON). Raises SliceError when they
    cannot be reached: no such port, several ports and no name, a malformed field."""
    name = (obj.get("metadata") or {}).get("name", "?")
    try:
        items = obj.get("endpoints") or []
        if not items:  # a Service with no pods yet: its ports do not matter
            return []
        port = _port(name, obj.get("ports") or [], port_name)
        ipv6 = obj.get("addressType") == "IPv6"
        found = []
        for item in items:
            addresses = item.get("addresses") or []
            if not addresses:  # the API requires one; there is nothing to reach
                continue
            host = f"[{addresses[0]}]" if ipv6 else str(addresses[0])
            ref = item.get("targetRef") or {}
            key = ref.get("name") if ref.get("kind") == "Pod" and ref.get("name") else addresses[0]
            state = endpoint_state(item.get("conditions") or {})
            found.append(Endpoint(str(key), f"http://{host}:{port}", state))
        return found
    except (AttributeError, TypeError) as err:
        raise SliceError(f"EndpointSlice {name}: malformed: {err}") from err


def _port(slice_name: str, ports: Sequence[Mapping[str, Any]], port_name: str | None) -> int:
    listed = ", ".join(f"{p.get('name') or '(unnamed)'}={p.get('port')}" for p in ports)
    where = f"EndpointSlice {slice_name}: ports [{listed}]"
    if port_name is None and len(ports) != 1:
        raise SliceError(f"{where}: no port name was given, so the slice needs exactly one port")
    matching = [p for p in ports if port_name is None or (p.get("name") or "") == port_name]
    if not matching:
        raise SliceError(f'{where}: none is named "{port_name}"')
    number = matching[0].get("port")
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 65535:
        raise SliceError(f"{where}: port {number!r} is not a port number")
    return number


def merge(slices: Mapping[str, Sequence[Endpoint]]) -> dict[str, Endpoint]:
    """One snapshot from every slice of the Service, by endpoint key.

    A pod listed twice is moving between slices, and one copy may be stale: the more
    cautious state wins (terminating over not ready over ready), since terminating
    never reverts and a ready pod missed for a moment costs nothing. Equal states:
    the first slice by name.
    """
    merged: dict[str, Endpoint] = {}
    for name in sorted(slices):
        for endpoint in slices[name]:
            known = merged.get(endpoint.key)
            if known is None or _CAUTION[endpoint.state] > _CAUTION[known.state]:
                merged[endpoint.key] = endpoint
    return merged
