"""A peer lost at the TCP level while its process lives on, as when a node is lost: the
kernel drops every packet to and from one loopback port (iptables, as root), so no
FIN or RST ever arrives and nothing but TCP's own timers can tell.

    async with silent_pod(lines=1) as pod:
        ...                                  # a request reaches the pod
        with dropped(pod.port):              # the pod's node is gone
            ...                              # what the client sees now

The rules name the port, so nothing else on the machine is dropped, and they are
removed when the block ends, however it ends. ``iptables`` missing is a failure of
the test, not a skip (scripts/test installs it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@contextmanager
def dropped(port: int) -> Iterator[None]:
    """Drop every loopback TCP packet from or to ``port`` while the block runs."""
    rules = [
        ["INPUT", "-i", "lo", "-p", "tcp", side, str(port), "-j", "DROP"]
        for side in ("--sport", "--dport")
    ]
    added: list[list[str]] = []
    try:
        for rule in rules:
            subprocess.run(["iptables", "-A", *rule], check=True, capture_output=True)
            added.append(rule)
        yield
    finally:
        for rule in added:
            subprocess.run(["iptables", "-D", *rule], check=True, capture_output=True)


@dataclass
class SilentPod:
    """An Ollama stand-in that writes ``lines`` NDJSON lines to any POST, then nothing
    more, holding the request open (a model that has stopped producing tokens, or, with
    0 lines, one that has not produced its first: not even the headers go out)."""

    lines: int
    port: int = 0
    arrived: int = 0
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    """Set as the pod stops: its held requests end (aiohttp's graceful shutdown would
    otherwise wait a minute for them)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.arrived += 1
        if not self.lines:
            await self.stopped.wait()
            return web.json_response({"error": "stopped"}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for n in range(self.lines):
            await response.write(json.dumps({"message": f"token {n}", "done": False}).encode())
            await response.write(b"\n")
        await self.stopped.wait()
        return response


@asynccontextmanager
async def silent_pod(lines: int) -> AsyncIterator[SilentPod]:
    pod = SilentPod(lines)
    app = web.Application()
    app.router.add_post("/{tail:.*}", pod.answer)
    server = TestServer(app, host="127.0.0.1", handler_cancellation=True)
    await server.start_server()
    assert server.port is not None
    pod.port = server.port
    try:
        yield pod
    finally:
        pod.stopped.set()
        await server.close()
