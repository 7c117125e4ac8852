"""Stream one request to Ollama and its answer back, unbuffered and unchanged.

Ollama writes nothing until its first token, so there is no read timeout: a request
may sit silent in a model load or a long prefill. Bytes go to the client as Ollama
writes them. If the client leaves, the handler is cancelled and the upstream
connection is closed at once, which makes Ollama free the slot.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

# RFC 9110 §7.6.1 connection-specific headers, plus the ones aiohttp sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
BUSY_HEADER = "X-Scaler-Busy"
"""Set on the proxy's own 503 (its slots and queue are full), never on Ollama's: a
router seeing it knows the request never reached Ollama and sends it elsewhere."""
_TAIL_LIMIT = 1 << 16  # keep at most the last 64 KiB to read the final chunk's stats


class UpstreamUnavailable(Exception):
    """Ollama could not be reached before anything was sent to the client."""


@dataclass(slots=True)
class Outcome:
    """What happened: status sent, seconds to Ollama's first byte, the final stats."""

    status: int
    first_byte: float | None = None
    stats: dict[str, Any] | None = None
    broken: bool = False


def request_headers(request: web.Request) -> CIMultiDict[str]:
    return CIMultiDict(
        (name, value) for name, value in request.headers.items() if name.lower() not in HOP_BY_HOP
    )


def response_headers(upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
    # aiohttp has already undone any transfer coding; a content-encoding stays as sent.
    return CIMultiDict(
        (name, value)
        for name, value in upstream.headers.items()
        if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"
    )


async def forward(
    request: web.Request,
    session: aiohttp.ClientSession,
    upstream_url: str,
    *,
    connect_timeout: float,
    started: float,
) -> tuple[web.StreamResponse, Outcome]:
    """Send ``request`` to ``upstream_url`` (same path and query) and stream the
    answer back. ``started``: perf_counter when Ollama's slot was taken."""
    upstream = await open_upstream(
        request,
        session,
        upstream_url,
        body=request.content if request.can_read_body else None,
        connect_timeout=connect_timeout,
    )
    try:
        return await relay(request, upstream, started)
    finally:
        upstream.close()  # never back to the pool half-read: Ollama must see the end


async def open_upstream(
    request: web.Request,
    session: aiohttp.ClientSession,
    upstream_url: str,
    *,
    body: bytes | aiohttp.StreamReader | None,
    connect_timeout: float,
) -> aiohttp.ClientResponse:
    """Send ``request``'s method, path, query and headers with ``body`` to
    ``upstream_url``; the answer's status and headers, its body still unread.

    The caller must ``close()`` the answer (or ``relay`` it and then close it).
    """
    url = upstream_url.rstrip("/") + request.rel_url.raw_path_qs
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=None)
    try:
        return await session.request(
            request.method,
            url,
            headers=request_headers(request),
            data=body,
            allow_redirects=False,
            auto_decompress=False,
            timeout=timeout,
        )
    except (TimeoutError, aiohttp.ClientConnectionError, OSError) as error:
        raise UpstreamUnavailable(f"cannot reach Ollama at {upstream_url}: {error}") from error


async def relay(
    request: web.Request, upstream: aiohttp.ClientResponse, started: float
) -> tuple[web.StreamResponse, Outcome]:
    """Stream ``upstream``'s answer to ``request``'s client as it arrives."""
    outcome = Outcome(status=upstream.status, first_byte=time.perf_counter() - started)
    response = web.StreamResponse(
        status=upstream.status, reason=upstream.reason, headers=response_headers(upstream)
    )
    if upstream.headers.get("Content-Length") is not None:
        response.content_length = int(upstream.headers["Content-Length"])
    await response.prepare(request)
    tail = bytearray()
    try:
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
            tail += chunk
            if len(tail) > _TAIL_LIMIT:
                del tail[: len(tail) - _TAIL_LIMIT]
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as error:
        outcome.broken = True
        await _write_error(response, upstream, f"Ollama closed the stream: {error}")
        return response, outcome
    outcome.stats = final_stats(bytes(tail))
    await response.write_eof()
    return response, outcome


async def _write_error(
    response: web.StreamResponse, upstream: aiohttp.ClientResponse, message: str
) -> None:
    """End a broken stream with an error the client's parser understands."""
    content_type = upstream.headers.get("Content-Type", "")
    if "text/event-stream" in content_type:
        line = f"data: {json.dumps({'error': {'message': message}})}\n\n"
    else:
        line = json.dumps({"error": message}) + "\n"
    try:
        await response.write(line.encode())
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client is gone too


def final_stats(tail: bytes) -> dict[str, Any] | None:
    """The statistics of Ollama's final chunk (``done: true``), if the answer ended
    with one (NDJSON streams and plain JSON answers alike)."""
    for line in reversed(tail.splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            chunk = json.loads(line)
        except ValueError:
            return None
        if isinstance(chunk, dict) and chunk.get("done") is True:
            return chunk
        return None
    return None
