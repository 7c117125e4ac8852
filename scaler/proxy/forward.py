"""Stream one request to Ollama and its answer back, unbuffered and unchanged.

Ollama writes nothing until its first token, so there is no read timeout: a request
may sit silent in a model load or a long prefill. A peer lost without closing its
connections is noticed by TCP keepalive instead (``scaler.serving.keepalive``), and
ends the request as a peer that hangs up does. Bytes go to the client as Ollama
writes them. If the client leaves, the handler is cancelled and the upstream
connection is closed at once, which makes Ollama free the slot. An answer read to the
end leaves its connection to the session's pool, if the session keeps one.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from scaler.proxy.routes import normal_path
from scaler.serving.keepalive import UpstreamKeepalive

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
_TAIL_LIMIT = 1 << 16  # the last 64 to 128 KiB are kept, to read the final chunk's stats
REPLAYABLE_BODY = 1 << 20
"""Bytes of a request body read whole before it is sent, so that it can be resent
(aiohttp itself warns against sending larger bodies as bytes)."""


SESSION = web.AppKey("session", aiohttp.ClientSession)
"""Keep-alive connections upstream, for bodies that can be sent twice."""
FRESH_SESSION = web.AppKey("fresh_session", aiohttp.ClientSession)
"""A new connection per request: streamed bodies, the models' writer."""


@asynccontextmanager
async def upstream_sessions(
    app: web.Application, keepalive: UpstreamKeepalive
) -> AsyncIterator[aiohttp.ClientSession]:
    """Both upstream sessions, stored on ``app`` (``SESSION``, ``FRESH_SESSION``) and
    closed on exit; gives the pooled one. Every socket of both gets ``keepalive``'s
    options, so a lost peer fails its requests within ``keepalive.bound`` seconds.

    Answers read to the end leave their connection open for the next request, sparing a
    connect, an accept and a close per request (more CPU than the relay, profiled). One
    cut short is closed (``forward``), which is how the server upstream learns to free
    the slot. A pooled connection the server closed meanwhile: see ``open_upstream``.
    No keep-alive for what cannot be sent twice or may go quiet.
    """
    factory = keepalive.socket_factory
    pooled = aiohttp.TCPConnector(limit=0, socket_factory=factory)
    fresh = aiohttp.TCPConnector(limit=0, force_close=True, socket_factory=factory)
    async with (
        aiohttp.ClientSession(connector=pooled, auto_decompress=False) as session,
        aiohttp.ClientSession(connector=fresh, auto_decompress=False) as fresh_session,
    ):
        app[SESSION] = session
        app[FRESH_SESSION] = fresh_session
        yield session


class UpstreamUnavailable(Exception):
    """Ollama could not be reached before anything was sent to the client."""


@dataclass(slots=True)
class Outcome:
    """What happened: status sent, seconds to Ollama's first byte, the final stats."""

    status: int
    first_byte: float | None = None
    stats: dict[str, Any] | None = None
    broken: bool = False


def normalised(request: web.Request) -> tuple[web.Request, str]:
    """``request`` with its path in normal form (``normal_path``: ``/api//pull/`` is
    ``/api/pull``), and that path: what is classified, counted and forwarded."""
    path = normal_path(request.path)
    if path != request.rel_url.raw_path:
        request = request.clone(rel_url=request.rel_url.with_path(path, keep_query=True))
    return request, path


def request_headers(request: web.Request) -> CIMultiDict[str]:
    return CIMultiDict([(n, v) for n, v in request.headers.items() if n.lower() not in HOP_BY_HOP])


# aiohttp has already undone any transfer coding; a content-encoding stays as sent.
_NOT_RELAYED = HOP_BY_HOP | {"content-length"}


def response_headers(upstream: aiohttp.ClientResponse) -> list[tuple[str, str]]:
    """The answer's headers to send on (a list: the response copies it anyway)."""
    return [(n, v) for n, v in upstream.headers.items() if n.lower() not in _NOT_RELAYED]


async def forward(
    request: web.Request,
    session: aiohttp.ClientSession,
    upstream_url: str,
    *,
    connect_timeout: float,
    started: float,
    streamed_session: aiohttp.ClientSession | None = None,
    body: bytes | None = None,
) -> tuple[web.StreamResponse, Outcome]:
    """Send ``request`` to ``upstream_url`` (same path and query) and stream the
    answer back. ``started``: perf_counter when Ollama's slot was taken. ``body``: the
    request's body, already read whole (``body.read_body``); else it is read here.

    A body too large to hold (see ``request_body``) goes through ``streamed_session``
    (default: ``session``). Give a session without keep-alive there, so that a body
    that cannot be sent twice never goes on a pooled connection.
    """
    payload = await request_body(request) if body is None else body
    if isinstance(payload, aiohttp.StreamReader) and streamed_session is not None:
        session = streamed_session
    upstream = await open_upstream(
        request, session, upstream_url, body=payload, connect_timeout=connect_timeout
    )
    try:
        return await relay(request, upstream, started)
    finally:
        upstream.close()  # never back to the pool half-read: Ollama must see the end


async def request_body(request: web.Request) -> bytes | aiohttp.StreamReader | None:
    """The body to send: read whole when its length is known and at most
    ``REPLAYABLE_BODY`` (so it can be sent twice, see ``open_upstream``), else the
    stream itself, forwarded as it arrives."""
    if not request.can_read_body:
        return None
    length, limit = request.content_length, request.client_max_size or REPLAYABLE_BODY
    if length is not None and length <= min(limit, REPLAYABLE_BODY):
        return await request.read()
    return request.content


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

    When ``body`` is bytes (or none) and the connection closes before any answer, the
    request goes once more: that was a kept-alive connection Ollama closed as it was
    taken from the pool. Ollama's Go server has no idle timeout; it closes idle
    connections only when it stops, unread, so the request was not served. A second
    failure is final, and a failed connect is never retried. The caller must
    ``close()`` the answer (or ``relay`` it and then close it).
    """
    url = upstream_url.rstrip("/") + request.rel_url.raw_path_qs
    headers = request_headers(request)
    if isinstance(body, bytes):  # aiohttp sets it from the bytes, which may be rewritten
        headers.popall("Content-Length", None)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=None)
    attempts = 1 if isinstance(body, aiohttp.StreamReader) else 2
    for attempt in range(1, attempts + 1):
        try:
            return await session.request(
                request.method,
                url,
                headers=headers,
                data=_sendable(body),
                allow_redirects=False,
                auto_decompress=False,
                timeout=timeout,
            )
        except (aiohttp.ClientConnectorError, TimeoutError) as error:
            raise _unavailable(upstream_url, error) from error  # not connected: final
        except _CLOSED_UNANSWERED as error:
            if attempt == attempts:
                raise _unavailable(upstream_url, error) from error
        except (aiohttp.ClientConnectionError, OSError) as error:
            raise _unavailable(upstream_url, error) from error
    raise AssertionError("not reached: the last attempt returns or raises")


def _sendable(body: bytes | aiohttp.StreamReader | None) -> object:
    """A large body read whole goes as a fresh file-like view each attempt: aiohttp
    warns against (and blocks the loop writing) bytes over 1 MiB in one piece."""
    if isinstance(body, bytes) and len(body) > REPLAYABLE_BODY:
        return io.BytesIO(body)
    return body


# Connected, then closed (FIN or RST) before the answer's status line.
_CLOSED_UNANSWERED = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
    aiohttp.ClientConnectionResetError,
)


def _unavailable(upstream_url: str, error: BaseException) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"cannot reach Ollama at {upstream_url}: {error}")


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
    content, tail, last = upstream.content, bytearray(), b""
    try:
        while chunk := await content.readany():  # b"" at the end
            tail += chunk
            if len(tail) > 2 * _TAIL_LIMIT:  # trimmed now and then, not per chunk
                del tail[:-_TAIL_LIMIT]
            if content.at_eof():  # the end came with this chunk: one write for both
                last = chunk
                break
            await response.write(chunk)
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as error:
        outcome.broken = True
        await _write_error(response, upstream, f"Ollama closed the stream: {error}")
        return response, outcome
    outcome.stats = final_stats(tail)
    await response.write_eof(last)
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


def final_stats(tail: bytes | bytearray) -> dict[str, Any] | None:
    """The statistics of Ollama's final chunk (``done: true``), if the answer ended
    with one (NDJSON streams and plain JSON answers alike). Only the last line is
    looked at, found from the end: splitting a long tail costs more than the relay."""
    end = len(tail)
    while end > 0:
        start = tail.rfind(b"\n", 0, end) + 1
        line = tail[start:end].strip()
        if line:
            break
        end = start - 1
    else:
        return None
    try:
        chunk = json.loads(line)
    except ValueError:
        return None
    if isinstance(chunk, dict) and chunk.get("done") is True:
        return chunk
    return None
