"""Stand-ins for the routers as the controller's direct path sees them: their
/metrics on loopback addresses sharing one port (a headless Service's pods), and a
resolver that maps a name to those addresses as the cluster DNS would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from prometheus_client import Gauge

from scaler.sources.base import MetricUnavailable
from tests.support.proxy_stand_ins import StandIn, stand_ins

ROUTER_SERIES = ("scaler_router_queue_depth", "scaler_router_requests_in_flight")


class RouterStandIn:
    """A router's queue and dispatched gauges, served by a stand-in's /metrics."""

    def __init__(self, server: StandIn) -> None:
        self.server = server
        self.queue = Gauge(ROUTER_SERIES[0], "waiting", registry=server.registry)
        self.in_flight = Gauge(ROUTER_SERIES[1], "dispatched", registry=server.registry)
        per_pod = Gauge(
            "scaler_router_pod_requests_in_flight", "per pod", ["pod"], registry=server.registry
        )
        per_pod.labels("ollama-0").set(50)  # another series: never part of the sum
        server.queue.set(100)  # the proxy's series on the same page: not asked for


@asynccontextmanager
async def router_stand_ins(
    count: int, *, first_ip: int = 1
) -> AsyncIterator[tuple[list[RouterStandIn], list[str], int]]:
    """``count`` routers on 127.0.0.first_ip, .first_ip+1, ... and one port: the
    routers, their addresses and the port."""
    async with stand_ins(count, first_ip=first_ip) as (servers, urls):
        port = urlsplit(urls[0]).port
        assert port is not None
        addresses = [str(urlsplit(url).hostname) for url in urls]
        yield [RouterStandIn(server) for server in servers], addresses, port


@dataclass
class FakeResolver:
    """Names to addresses, or to the failure a lookup raises; records each lookup."""

    names: dict[str, Sequence[str] | MetricUnavailable] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    stalled: asyncio.Event | None = None  # lookups wait for it (a DNS server that is slow)

    async def resolve(self, host: str) -> Sequence[str]:
        self.lookups.append(host)
        if self.stalled is not None:
            await self.stalled.wait()
        answer = self.names[host]
        if isinstance(answer, MetricUnavailable):
            raise answer
        return answer
