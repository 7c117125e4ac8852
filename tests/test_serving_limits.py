"""Client connections at ``scaler proxy`` and ``scaler router`` are bounded (issue 13,
point 3): a new connection's head has ``header_timeout`` seconds, an idle kept-alive
one ``idle_timeout``, and past ``max_connections`` the oldest idle one is closed for
each newcomer, so ``/healthz`` answers through a slowloris flood.

The proxy app is served in the test's loop exactly as ``serve_until_cancelled`` serves
it (``start_guarded``); the fd-limit case runs ``scaler proxy`` as a process under a
256-descriptor limit. Waits are bounded loops on loopback, a few tenths of a second.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from scaler.proxy.app import build_app
from scaler.proxy.settings import ProxySettings
from scaler.serving.connections import ConnectionGuard, ConnectionLimits, start_guarded
from tests.support.counting_upstream import ANSWER, CountingUpstream
from tests.support.fake_ollama import running_fake_ollama
from tests.support.router_process import free_port

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
CHAT = json.dumps({"model": "llama3.2", "messages": [], "stream": False}).encode()
ENV = {"PATH": "/usr/bin:/bin"}  # no SCALER_* from the environment, no HTTP proxy


@asynccontextmanager
async def guarded(limits: ConnectionLimits) -> AsyncIterator[tuple[int, ConnectionGuard]]:
    async with CountingUpstream() as upstream:
        app = build_app(ProxySettings(upstream=upstream.url))
        runner, guard = await start_guarded(
            app, host="127.0.0.1", port=0, limits=limits, handler_cancellation=True
        )
        try:
            yield runner.addresses[0][1], guard
        finally:
            await runner.cleanup()


async def answer(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    try:
        return await asyncio.wait_for(reader.read(), 5.0)
    finally:
        writer.close()
        await writer.wait_closed()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closed the connection (EOF), at most ``seconds``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await asyncio.wait_for(reader.read(), seconds) == b""
    return loop.time() - started


async def test_heads_sent_slowly_or_never_finished_are_cut_off_at_header_timeout() -> None:
    async with guarded(ConnectionLimits(header_timeout=0.3, idle_timeout=60)) as (port, guard):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def trickle() -> None:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.02)  # the slow client's pacing is what is under test

        trickling = asyncio.create_task(trickle())
        slowloris = [await asyncio.open_connection("127.0.0.1", port) for _ in range(200)]
        for _, half in slowloris:
            half.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: b\r\n")  # never ends
        assert (await answer(port, HEALTHZ)).startswith(b"HTTP/1.1 200")  # meanwhile
        assert await closed_within(reader, 2.0) < 1.0
        for each, _ in slowloris:
            assert await closed_within(each, 2.0) < 1.0
        trickling.cancel()
        for _, each in [*slowloris, (reader, writer)]:
            each.close()
        assert guard.closed_by_guard["header_timeout"] == 201
        assert guard.open == 0


async def test_an_idle_kept_alive_connection_is_closed_after_idle_timeout() -> None:
    async with guarded(ConnectionLimits(header_timeout=60, idle_timeout=0.3)) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive
        assert (await reader.readuntil(b'{"status": "ok"}')).startswith(b"HTTP/1.1 200")
        assert await closed_within(reader, 2.0) < 1.0
        writer.close()


async def test_past_the_cap_the_oldest_idle_connections_go_and_healthz_answers() -> None:
    limits = ConnectionLimits(header_timeout=60, idle_timeout=60, max_connections=8)
    async with guarded(limits) as (port, guard):
        busy_reader, busy = await asyncio.open_connection("127.0.0.1", port)
        busy.write(
            b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(CHAT)
        )  # inside a handler (reading its body) from here on: never evicted
        flood = [await asyncio.open_connection("127.0.0.1", port) for _ in range(30)]
        for _, writer in flood:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost")  # half a head, forever
        assert (await answer(port, HEALTHZ)).startswith(b"HTTP/1.1 200")
        assert guard.open <= 8
        assert guard.closed_by_guard["over_cap"] >= 30 - 8
        busy.write(CHAT)  # the busy one was spared: its request completes
        reply = await asyncio.wait_for(busy_reader.readuntil(ANSWER), 5.0)
        assert reply.startswith(b"HTTP/1.1 200")
        for _, writer in [*flood, (busy_reader, busy)]:
            writer.close()


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


@pytest.mark.parametrize("command", ["proxy", "router"])
def test_at_a_256_fd_limit_healthz_metrics_and_inference_answer_through_300_idle_connections(
    command: str, tmp_path: Path
) -> None:
    with running_fake_ollama() as fake:
        port = free_port("127.0.0.1")
        args = [sys.executable, "-m", "scaler.cli", command, "--host", "127.0.0.1"]
        args += ["--port", str(port), "--header-timeout", "600"]  # the cap, alone
        args += ["--upstream" if command == "proxy" else "--endpoint", fake.url]
        log = tmp_path / f"{command}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env=ENV, preexec_fn=_limit_fds
            )
        flood: list[socket.socket] = []
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, process, log)
            for _ in range(300):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost")  # half a head
                flood.append(sock)
            started = time.monotonic()
            with httpx.Client(timeout=5, trust_env=False) as http:
                assert http.get(f"{url}/healthz").status_code == 200
                assert "_queue_depth" in http.get(f"{url}/metrics").text
                assert http.post(f"{url}/api/chat", content=CHAT).status_code == 200
            assert time.monotonic() - started < 5
            assert process.poll() is None
        finally:
            for sock in flood:
                sock.close()
            process.kill()
            process.wait()
    logged = log.read_text()
    assert "at most 64 client connections" in logged
    assert logged.count("64 client connections open, the cap") == 1  # once a minute at most


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """/readyz needs Ollama; the proxy alone answers /healthz (bounded wait)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/healthz", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"not healthy:\n{log.read_text()}")
