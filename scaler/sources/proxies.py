"""The fast path: read the queue straight from the processes that hold it.

Prometheus adds its scrape interval to every reading; the exporters know their queue
now. Two kinds: each ready pod's ``scaler proxy`` (the caller knows the pod IPs), or
each ``scaler router`` behind a headless Service (one name, resolved at every read).
This source fetches every ``/metrics`` concurrently and sums the named series. Any
one that cannot be read makes the whole reading fail, with a typed failure, so the
caller falls back to Prometheus rather than under-count.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Sequence

import aiohttp

from scaler.sources.base import (
    BadResponse,
    ConnectionFailed,
    EmptyResult,
    HttpStatus,
    IncompleteReading,
    NotFinite,
    QueryTimeout,
    Sample,
    plausible,
)
from scaler.sources.resolver import Resolver, SystemResolver, one_family


class ProxyScraper:
    """Sums series across exporters' ``/metrics``. ``timeout`` in seconds: per pod, or
    for a host's lookup and reads together."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: float,
        resolver: Resolver | None = None,
    ) -> None:
        self._session = session
        self._seconds = timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._resolver = resolver or SystemResolver()

    async def total_behind(
        self, host: str, *, port: int, path: str, series: Sequence[str], now: float
    ) -> Sample:
        """The sum of ``series`` over every address ``host`` resolves to (the routers
        behind a headless Service), stamped ``now``."""
        try:
            async with asyncio.timeout(self._seconds):
                addresses = one_family(await self._resolver.resolve(host))
                if not addresses:
                    raise EmptyResult(f"{host} resolves to no address")
                return await self.total(endpoint_urls(addresses, port, path), series, now=now)
        except TimeoutError as error:
            raise QueryTimeout(f"{host} and its addresses did not answer in time") from error

    async def total(self, urls: Sequence[str], series: Sequence[str], *, now: float) -> Sample:
        """The sum of ``series`` over every URL's exposition, stamped ``now``."""
        if not urls:
            raise EmptyResult("no ready pod to read directly")
        values = await asyncio.gather(*(self._read(url, tuple(series)) for url in urls))
        total = math.fsum(values)
        if not math.isfinite(total):
            raise NotFinite(f"the proxies' {', '.join(series)} sum to {total}")
        return Sample(plausible(total, f"the exporters' {', '.join(series)} sum to"), now)

    async def _read(self, url: str, series: tuple[str, ...]) -> float:
        try:
            async with self._session.get(url, timeout=self._timeout) as response:
                if response.status != 200:
                    raise HttpStatus(f"{url} answered {response.status}")
                text = await response.text()
        except TimeoutError as error:
            raise QueryTimeout(f"{url} did not answer in time") from error
        except aiohttp.ClientError as error:
            raise ConnectionFailed(f"cannot read {url}: {error}") from error
        return sum_series(text, series, source=url)


def endpoint_urls(addresses: Iterable[str], port: int, path: str) -> list[str]:
    """``http://ADDRESS:port/path`` for each address; IPv6 in brackets (RFC 3986)."""
    return [f"http://{_authority(address)}:{port}{path}" for address in addresses]


def _authority(address: str) -> str:
    # An IPv6 zone (fe80::1%eth0) is written %25 inside the brackets (RFC 6874).
    return f"[{address.replace('%', '%25')}]" if ":" in address else address


def sum_series(text: str, series: tuple[str, ...], *, source: str) -> float:
    """The sum of every sample of ``series`` in a text exposition.

    A plain line scan, not a full parser: this runs for every pod at every poll. An
    exporter that lacks one of ``series`` counts as unread (``IncompleteReading``), as
    one that cannot be read at all: its sum would under-count. A sample no queue or
    in-flight count can have (negative, huge) is ``ImplausibleValue``.
    """
    total = 0.0
    found: set[str] = set()
    for line in text.splitlines():
        if not line.startswith(series):
            continue
        name, _, rest = line.partition(" ")
        if "{" in name:
            name = name.split("{", 1)[0]
            rest = line.rsplit("} ", 1)[-1]
        if name not in series:
            continue  # a longer name with the same prefix
        try:
            value = float(rest.split()[0])
        except (ValueError, IndexError) as error:
            raise BadResponse(f"{source}: cannot read the sample {line[:80]!r}") from error
        if math.isfinite(value):
            plausible(value, f"{source}: {name} =")
        total += value
        found.add(name)
    if not found:
        raise EmptyResult(f"{source} exports none of {', '.join(series)}")
    missing = [name for name in series if name not in found]
    if missing:
        shown = ", ".join(name for name in series if name in found)
        raise IncompleteReading(f"{source} exports {shown} but not {', '.join(missing)}")
    return total
