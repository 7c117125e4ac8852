"""The routers' queue stream, as a client: ``GET /scaler/v1/queue/watch``.

A router sends its queue at once on connect, then a line at every change (coalesced
to one per 10 ms) and a heartbeat every second when nothing changed, one JSON object
a line: ``{"queued": 3, "in_flight": 2, "seq": 17}``. A client that hears nothing
for ``STALE_AFTER`` seconds cannot tell a quiet queue from a hung router, so it
treats the stream as broken. Every way a stream ends is a ``MetricUnavailable``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import NamedTuple

import aiohttp

from scaler.sources.base import (
    BadResponse,
    ConnectionFailed,
    HttpStatus,
    MetricUnavailable,
)
from scaler.sources.proxies import endpoint_urls

WATCH_PATH = "/scaler/v1/queue/watch"
STALE_AFTER = 3.0
"""Seconds without a line after which a stream is stale: three heartbeats missed."""
MAX_LINE = 1024
"""Bytes a line may have: a line is ~50; a longer one is not the router talking."""


class PushStale(MetricUnavailable):
    """A router's stream is not live: never connected, broken, or silent too long."""

    kind = "push_stale"


class QueueLine(NamedTuple):
    """One line of the stream: the router's queue at that moment."""

    queued: int
    in_flight: int
    seq: int


def parse_line(raw: bytes, *, source: str) -> QueueLine:
    """A line as the router writes it; anything else is ``BadResponse``."""
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise BadResponse(f"{source}: not JSON: {raw[:80]!r}") from error
    if not isinstance(data, dict):
        raise BadResponse(f"{source}: not a JSON object: {raw[:80]!r}")
    counts: list[int] = []
    for key in QueueLine._fields:
        value = data.get(key)
        # bool is an int in Python, never in the router's lines
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BadResponse(f"{source}: {key} is {str(value)[:20]!r}, not a count")
        counts.append(value)
    return QueueLine(*counts)


def watch_url(address: str, port: int) -> str:
    """The stream's URL at ``address``, written as the proxies' scrape URLs are."""
    return endpoint_urls([address], port, WATCH_PATH)[0]


async def follow(
    session: aiohttp.ClientSession,
    url: str,
    on_line: Callable[[QueueLine], None],
    *,
    stale_after: float = STALE_AFTER,
) -> None:
    """Call ``on_line`` for each line of the stream at ``url`` until it ends; then raise
    ``MetricUnavailable`` saying why (a stream never ends well)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=stale_after)
    try:
        async with session.get(url, timeout=timeout) as response:
            if response.status != 200:
                raise HttpStatus(f"{url} answered {response.status}")
            await _read_lines(response.content, url, on_line, stale_after)
    except TimeoutError as error:
        raise PushStale(f"{url}: no line for {stale_after:g} s") from error
    except aiohttp.ClientError as error:
        raise ConnectionFailed(f"{url}: {error}") from error
    raise ConnectionFailed(f"{url}: the stream ended")


async def _read_lines(
    content: aiohttp.StreamReader,
    url: str,
    on_line: Callable[[QueueLine], None],
    stale_after: float,
) -> None:
    buffer = b""
    while True:
        async with asyncio.timeout(stale_after):
            chunk = await content.readany()
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            if len(raw) > MAX_LINE:
                raise BadResponse(f"{url}: a line of {len(raw)} bytes (at most {MAX_LINE})")
            if raw.strip():
                on_line(parse_line(raw, source=url))
        if len(buffer) > MAX_LINE:
            raise BadResponse(f"{url}: no end of line within {MAX_LINE} bytes")
