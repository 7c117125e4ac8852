"""Child processes for the HTTP benchmarks, and what the kernel says they cost.

Each server runs in its own process so that none shares a GIL with the load generator:
the fake Ollama (``tests.support.fake_ollama``), a real ``scaler proxy``, and a plain aiohttp
forwarder used as the reference for "what forwarding costs in aiohttp on this machine".

    fake, direct = start_fake({"slots": 64, "tokens_per_second": 1e6})
    proxy, proxied = start_proxy(direct, parallel=64, max_queue=640)
    before = cpu_seconds(proxy.pid)        # utime + stime, seconds
    ...
    stop(proxy); stop(fake)
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
FAKE_LAUNCHER = """
import json, signal, sys
from tests.support.fake_ollama import running_fake_ollama
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
with running_fake_ollama(**json.loads(sys.argv[1])) as fake:
    print(fake.port, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
"""
FORWARDER_LAUNCHER = """
import sys
from benchmarks.processes import serve_forwarder
serve_forwarder(int(sys.argv[1]), sys.argv[2])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stop(child: subprocess.Popen[Any]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(STOP_TIMEOUT)


def start_fake(settings: dict[str, Any]) -> tuple[subprocess.Popen[str], str]:
    """The fake Ollama with ``settings`` (``FakeOllamaSettings`` fields); its base URL."""
    child = subprocess.Popen(
        [sys.executable, "-c", FAKE_LAUNCHER, json.dumps(settings)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    readable, _, _ = select.select([child.stdout], [], [], START_TIMEOUT)
    port = child.stdout.readline().strip() if readable else ""
    if not port.isdigit():
        stop(child)
        raise RuntimeError(f"the fake Ollama did not start (exit code {child.poll()})")
    return child, f"http://{HOST}:{port}"


def start_listener(argv: list[str], port: int, name: str) -> tuple[subprocess.Popen[Any], str]:
    """Run ``argv`` from the repository root until it accepts on ``port``; its base URL."""
    child = subprocess.Popen(argv, cwd=ROOT)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and child.poll() is None:
        try:
            socket.create_connection((HOST, port), timeout=0.1).close()
            return child, f"http://{HOST}:{port}"
        except OSError:
            time.sleep(0.05)
    stop(child)
    raise RuntimeError(f"the {name} did not start (exit code {child.poll()})")


def start_proxy(
    upstream: str, parallel: int, max_queue: int, log_level: str = "info"
) -> tuple[subprocess.Popen[Any], str]:
    """A real ``scaler proxy`` in front of ``upstream``, at production's log level."""
    return _start_scaler("proxy", ["--upstream", upstream], parallel, max_queue, log_level)


def start_router(
    upstream: str, parallel: int, max_queue: int, log_level: str = "info"
) -> tuple[subprocess.Popen[Any], str]:
    """A real ``scaler router`` with ``upstream`` as its one pod, at production's log
    level."""
    return _start_scaler("router", ["--endpoint", upstream], parallel, max_queue, log_level)


def _start_scaler(
    command: str, upstream: list[str], parallel: int, max_queue: int, log_level: str
) -> tuple[subprocess.Popen[Any], str]:
    port = free_port()
    args = ["--host", HOST, "--port", str(port), *upstream]
    args += ["--parallel", str(parallel), "--max-queue", str(max_queue), "--log-level", log_level]
    return start_listener([sys.executable, "-m", "scaler.cli", command, *args], port, command)


def start_forwarder(upstream: str) -> tuple[subprocess.Popen[Any], str]:
    """The reference: ``forwarder_app`` in front of ``upstream``."""
    port = free_port()
    argv = [sys.executable, "-c", FORWARDER_LAUNCHER, str(port), upstream]
    return start_listener(argv, port, "reference forwarder")


def proc_status_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime + stime


class RssSampler:
    """Samples a process's VmRSS from a thread; ``peak`` in MiB."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                self.peak = max(self.peak, proc_status_mib(self.pid, "VmRSS"))
            except (FileNotFoundError, ProcessLookupError):
                return  # the process is gone; the phase reports the error
            self._done.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()


# -- the reference forwarder: what a plain aiohttp proxy costs ---------------------------

_SESSION = web.AppKey("session", aiohttp.ClientSession)
_DROP = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "content-length"})


def forwarder_app(upstream: str) -> web.Application:
    """The simplest correct streaming forwarder: pooled keep-alive connections, no
    admission, no metrics, aiohttp's defaults everywhere else."""

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        body = request.content if request.can_read_body else None
        url = upstream + request.rel_url.raw_path_qs
        async with request.app[_SESSION].request(
            request.method, url, headers=headers, data=body, auto_decompress=False
        ) as answer:
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _DROP}
            response = web.StreamResponse(status=answer.status, headers=kept)
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def session(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout()) as s:
            app[_SESSION] = s
            yield

    app = web.Application()
    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def serve_forwarder(port: int, upstream: str) -> None:
    web.run_app(forwarder_app(upstream), host=HOST, port=port, print=None)
