"""Read an inference request's body whole, bounded in size and in time, before the
request may take a slot (proxy) or a place in the shared queue (router).

A slot taken before the body has arrived is held by the client's network, not by
Ollama: one connection trickling its body a byte at a time would stall a pod of one
slot for as long as it likes. Read first, and a slow or oversized body costs a
connection and a buffer, never a slot. Ollama's own limit for comparison: none (its
Go server reads whatever comes), so the bound here is ours, and generous.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from scaler.errors import ScalerError


class BodyRefused(ScalerError):
    """The body was too large (413) or did not arrive in time (408); the connection
    must be closed, since the rest of the body is still unread."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BodiesFull(ScalerError):
    """The bodies held in memory would exceed ``BodyBudget.total``: a 503, busy."""


class BodyBudget:
    """Bytes of inference bodies held in memory at once, all requests together.

    Each body is bounded by ``max_body``, but bodies are read whole before the queue,
    so without a total N clients each sending ``max_body`` would hold N times that (the
    manifests give the proxy and the router 256 MiB). A body counts from its first byte
    (its announced length, when there is one) to the end of its request.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.held = 0

    @asynccontextmanager
    async def read(
        self, request: web.Request, *, limit: int, timeout: float
    ) -> AsyncIterator[bytes]:
        """The whole body (``read_body``), counted until the block ends. Raises
        BodyRefused (413, 408) or BodiesFull."""
        taken = 0

        def take(size: int) -> None:
            nonlocal taken
            if self.held + size > self.total:
                raise BodiesFull(f"request bodies in memory would exceed {self.total} bytes")
            self.held += size
            taken += size

        try:
            yield await read_body(request, limit=limit, timeout=timeout, take=take)
        finally:
            self.held -= taken


async def read_body(
    request: web.Request, *, limit: int, timeout: float, take: Callable[[int], None]
) -> bytes:
    """The whole body, at most ``limit`` bytes, all of it within ``timeout`` seconds of
    the request's head; ``take`` is told each size before it is held (and may raise).
    Raises BodyRefused (413 or 408)."""
    length = request.content_length
    if length is not None and length > limit:
        raise BodyRefused(413, _too_large(limit))
    try:
        async with asyncio.timeout(timeout):
            return await _bounded(request, limit, take)
    except TimeoutError as error:
        raise BodyRefused(408, f"request body not received within {timeout:g} s") from error


async def _bounded(request: web.Request, limit: int, take: Callable[[int], None]) -> bytes:
    if not request.can_read_body:
        return b""
    if request.content_length is not None:  # at most the limit: checked, and framed so
        take(request.content_length)
        return await request.read()
    content, body = request.content, bytearray()
    while chunk := await content.readany():  # b"" at the end
        take(len(chunk))
        body += chunk
        if len(body) > limit:  # chunked, or longer than announced
            raise BodyRefused(413, _too_large(limit))
    return bytes(body)


def _too_large(limit: int) -> str:
    return f"request body over {limit} bytes (max_body)"


def json_error(status: int, message: str) -> web.Response:
    """An error in Ollama's shape, ``{"error": message}``, which its clients raise."""
    return web.Response(
        status=status, text=json.dumps({"error": message}), content_type="application/json"
    )


async def refuse(request: web.Request, refused: BodyRefused) -> web.Response:
    """Answer ``refused`` (its status, Ollama's error shape) and end the connection.
    A body too large is still arriving: aiohttp reads and drops what comes for a while
    (its lingering close), so that the client sees the 413 and not a reset. A body
    that is late may never come: the connection closes as soon as the 408 is out."""
    response = json_error(refused.status, str(refused))
    response.force_close()
    if refused.status != 408:
        return response
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()
    return response
