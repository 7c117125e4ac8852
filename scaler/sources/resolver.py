"""Names to addresses for the direct path: every router behind a headless Service.

A headless Service's DNS name answers with the IP of every ready pod behind it, and
with NXDOMAIN when none is ready (kubernetes/dns#245: the spec was changed to match
kube-dns and CoreDNS). So one lookup per poll finds the routers to read, and a name
with no address is an empty result, not a broken network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Protocol

from scaler.sources.base import ConnectionFailed, EmptyResult, MetricUnavailable

# getaddrinfo's answers for a name that exists nowhere or has no address record.
_NO_ADDRESS = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


class Resolver(Protocol):
    """Turns a host name into addresses. Tests map names to loopback addresses."""

    async def resolve(self, host: str) -> Sequence[str]:
        """Every address of ``host`` (IPv4 and IPv6, in the resolver's order).

        Raises ``MetricUnavailable``: ``EmptyResult`` when the name has no address,
        ``ConnectionFailed`` when it cannot be looked up now."""
        ...


class SystemResolver:
    """The system's resolver (``getaddrinfo`` in the loop's thread pool): /etc/hosts,
    then the cluster DNS with the pod's search domains, as any client in the pod."""

    async def resolve(self, host: str) -> Sequence[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise lookup_failure(host, error) from error
        return [str(info[4][0]) for info in infos]


def lookup_failure(host: str, error: socket.gaierror) -> MetricUnavailable:
    """What a failed ``getaddrinfo`` means for the reading."""
    if error.errno in _NO_ADDRESS:
        return EmptyResult(f"{host} resolves to no address ({error.strerror})")
    return ConnectionFailed(f"cannot resolve {host}: {error.strerror}")


def one_family(addresses: Iterable[str]) -> tuple[str, ...]:
    """The IPv4 addresses if there are any, else the IPv6 ones; each once, in order.

    A dual-stack headless Service answers with an A and an AAAA record for every
    pod, and every pod has both: reading both families would count each router
    twice. Either family alone reaches every router.
    """
    unique = tuple(dict.fromkeys(addresses))
    v4 = tuple(a for a in unique if ipaddress.ip_address(a.split("%", 1)[0]).version == 4)
    return v4 or unique
