"""Slow and oversized request bodies at the proxy (issue 13, point 3): the body is read
whole before the request takes a slot or a place in the queue, within a deadline
(408 and close) and a size bound (413 with Ollama's JSON error shape).

The proxy runs in the test's loop on loopback; clients are raw sockets, so a body can
trickle in byte by byte as a slow or hostile client sends it.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from scaler.proxy.settings import ProxySettings
from tests.support.counting_upstream import ANSWER, CountingUpstream
from tests.support.proxy_in_loop import proxy_in_loop
from tests.support.waits import until

CHAT = json.dumps({"model": "llama3.2", "messages": [], "stream": False}).encode()


async def heads_parsed(server: web.Server, count: int) -> None:
    """Until aiohttp has parsed ``count`` request heads (bounded)."""
    await until(lambda: server.requests_count >= count, what=f"{count} heads parsed")


def head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def exchange(port: int, raw: bytes) -> tuple[int, bytes]:
    """Send ``raw`` on a new connection; the status and body of the answer, read to
    the connection's end (every request here says ``Connection: close`` or is
    closed by the proxy)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    answer = await asyncio.wait_for(reader.read(), 5.0)
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def test_a_trickling_body_takes_no_slot_and_another_request_is_served() -> None:
    settings_over = {"parallel": 1, "max_queue": 0, "body_timeout": 5.0}
    async with (
        CountingUpstream() as upstream,
        proxy_in_loop(ProxySettings(upstream=upstream.url, **settings_over)) as served,
    ):
        _, slow = await asyncio.open_connection("127.0.0.1", served.port)
        slow.write(head("/api/chat", len(CHAT)) + CHAT[:5])  # the rest never comes (yet)
        await slow.drain()
        await heads_parsed(served.server, 1)  # the proxy has the head: it is reading the body
        assert (served.proxy.admission.active, served.proxy.admission.queued) == (0, 0)
        fast = head("/api/chat", len(CHAT)).replace(b"Host: x", b"Host: x\r\nConnection: close")
        assert await exchange(served.port, fast + CHAT) == (200, ANSWER)
        slow.close()
        await slow.wait_closed()


async def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closes() -> None:
    async with (
        CountingUpstream() as upstream,
        proxy_in_loop(ProxySettings(upstream=upstream.url, body_timeout=0.2)) as served,
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, body = await exchange(served.port, head("/api/chat", len(CHAT)) + CHAT[:5])
        assert status == 408
        assert "not received within 0.2 s" in json.loads(body)["error"]
        assert loop.time() - started < 2.0
        assert upstream.seen == []  # never reached Ollama
        assert (served.proxy.admission.active, served.proxy.admission.queued) == (0, 0)


async def test_an_inference_body_over_max_body_gets_413_in_ollamas_error_shape() -> None:
    async with (
        CountingUpstream() as upstream,
        proxy_in_loop(ProxySettings(upstream=upstream.url, max_body=1024)) as served,
    ):
        declared, _ = await exchange(served.port, head("/api/chat", 2000) + b"x" * 2000)
        assert declared == 413
        chunked = (
            b"POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"800\r\n"
            + b"x" * 0x800
            + b"\r\n0\r\n\r\n"
        )
        status, body = await exchange(served.port, chunked)
        assert status == 413
        assert json.loads(body) == {"error": "request body over 1024 bytes (max_body)"}
        assert upstream.seen == []


async def test_a_body_over_one_mib_is_still_read_whole_and_forwarded_once() -> None:
    big = json.dumps({"model": "llama3.2", "prompt": "x" * (3 << 20)}).encode()
    async with (
        CountingUpstream() as upstream,
        proxy_in_loop(ProxySettings(upstream=upstream.url)) as served,
    ):
        raw = head("/api/generate", len(big)).replace(b"Host: x", b"Host: x\r\nConnection: close")
        assert await exchange(served.port, raw + big) == (200, ANSWER)
    assert [seen.size for seen in upstream.seen] == [len(big)]


async def test_bodies_held_at_once_are_bounded_by_body_memory_and_a_refusal_is_busy() -> None:
    bounds = {"max_body": 3000, "body_memory": 4096, "max_queue": 4}
    async with (
        CountingUpstream() as upstream,
        proxy_in_loop(ProxySettings(upstream=upstream.url, **bounds)) as served,
    ):
        big = b'{"prompt": "' + b"x" * 2980 + b'"}'
        slow_reader, slow = await asyncio.open_connection("127.0.0.1", served.port)
        slow.write(head("/api/generate", len(big)) + big[:10])  # holds 3000 of 4096 bytes
        await heads_parsed(served.server, 1)
        second = head("/api/chat", 2000).replace(b"Host: x", b"Host: x\r\nConnection: close")
        status, body = await exchange(served.port, second + b" " * 2000)
        assert status == 503  # busy: a router sends it to another pod
        assert "request bodies in memory would exceed 4096 bytes" in json.loads(body)["error"]
        slow.write(big[10:])  # the first body completes and is served
        assert (await asyncio.wait_for(slow_reader.readuntil(ANSWER), 5.0)).startswith(
            b"HTTP/1.1 200"
        )
        slow.close()
        await slow.wait_closed()
        await until(lambda: served.proxy.bodies.held == 0)  # its request ends: bytes back
        chat = head("/api/chat", len(CHAT)).replace(b"Host: x", b"Host: x\r\nConnection: close")
        assert await exchange(served.port, chat + CHAT) == (200, ANSWER)
    assert [seen.size for seen in upstream.seen] == [len(big), len(CHAT)]
