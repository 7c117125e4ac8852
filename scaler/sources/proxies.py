"""The fast path: read the queue straight from each pod's ``scaler proxy``.

Prometheus adds its scrape interval to every reading; the proxies know their queue
now. This source fetches each ready pod's ``/metrics`` concurrently and sums the
named series. Any pod that cannot be read makes the whole reading fail, with a typed
failure, so the caller falls back to Prometheus rather than under-count.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import aiohttp

from scaler.sources.base import (
    BadResponse,
    ConnectionFailed,
    EmptyResult,
    HttpStatus,
    NotFinite,
    QueryTimeout,
    Sample,
)


class ProxyScraper:
    """Sums series across proxies' ``/metrics``. ``timeout`` in seconds, per pod."""

    def __init__(self, session: aiohttp.ClientSession, *, timeout: float) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def total(self, urls: Sequence[str], series: Sequence[str], *, now: float) -> Sample:
        """The sum of ``series`` over every URL's exposition, stamped ``now``."""
        if not urls:
            raise EmptyResult("no ready pod to read directly")
        values = await asyncio.gather(*(self._read(url, tuple(series)) for url in urls))
        total = math.fsum(values)
        if not math.isfinite(total):
            raise NotFinite(f"the proxies' {', '.join(series)} sum to {total}")
        return Sample(total, now)

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


def sum_series(text: str, series: tuple[str, ...], *, source: str) -> float:
    """The sum of every sample of ``series`` in a text exposition.

    A plain line scan, not a full parser: this runs for every pod at every poll.
    """
    total = 0.0
    found = False
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
            total += float(rest.split()[0])
        except (ValueError, IndexError) as error:
            raise BadResponse(f"{source}: cannot read the sample {line!r}") from error
        found = True
    if not found:
        raise EmptyResult(f"{source} exports none of {', '.join(series)}")
    return total
