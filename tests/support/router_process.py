"""``scaler router`` as a real process on loopback: the CLI, its flags, its signals.

    with running_router(["http://127.0.0.1:8001"], log=tmp_path / "router.log",
                        parallel=1, max_queue=1) as url:
        ollama.Client(host=url).chat(...)

Started with ``--endpoint`` (no discovery), it is ready at once; ``running_router``
returns once ``/readyz`` answers 200, and on exit sends SIGTERM (the router drains)
and waits for the process. ``running_scaler`` does the same for any ``scaler``
command line, and ``running_process`` for any server process (the e2e Open WebUI).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import aiohttp

START_TIMEOUT = 30.0
"""Seconds for the process to import, bind and answer /readyz (a busy 2-core box)."""
STOP_TIMEOUT = 15.0
"""Seconds it may take to drain after SIGTERM before it is killed."""
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@contextmanager
def running_router(
    endpoints: Sequence[str], *, log: Path, host: str = "127.0.0.1", **flags: object
) -> Iterator[str]:
    """Run ``scaler router --endpoint URL ... --FLAG VALUE``; yield its base URL."""
    port = free_port(host)
    args = ["router", "--host", host, "--port", str(port)]
    for url in endpoints:
        args += ["--endpoint", url]
    for name, value in flags.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    with running_scaler(args, url=f"http://{host}:{port}", log=log) as url:
        yield url


@contextmanager
def running_scaler(
    args: Sequence[str], *, url: str, log: Path, start_timeout: float = START_TIMEOUT
) -> Iterator[str]:
    """Run ``scaler ARGS`` (a router or a proxy listening at ``url``) until its
    ``/readyz`` answers 200; yield ``url``; on exit SIGTERM (it drains) and wait."""
    command = [sys.executable, "-m", "scaler.cli", *args]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with running_process(command, url=url, log=log, env=env, start_timeout=start_timeout):
        yield url


@contextmanager
def running_process(
    command: Sequence[str],
    *,
    url: str,
    log: Path,
    env: dict[str, str],
    ready_path: str = "/readyz",
    start_timeout: float = START_TIMEOUT,
) -> Iterator[str]:
    """Run ``command`` (output to ``log``) until ``url + ready_path`` answers 200; yield
    ``url``; on exit SIGTERM, and SIGKILL after ``STOP_TIMEOUT`` seconds."""
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(url, process, log, start_timeout, ready_path=ready_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(
    url: str,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float,
    *,
    ready_path: str = "/readyz",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"{process.args!r} exited {process.returncode}:\n{log.read_text()}"
            )
        try:
            with _OPENER.open(url + ready_path, timeout=2.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        time.sleep(0.1)
    raise AssertionError(f"{url}{ready_path} not 200 after {timeout} s:\n{log.read_text()}")


async def until_ready(http: aiohttp.ClientSession, url: str, timeout: float = 30.0) -> None:
    """Until the router at ``url`` listens and ``/readyz`` says its discovery has listed
    the pods (none, maybe), without blocking the loop (a fake API server may share it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with http.get(url + "/readyz") as answer:
                if answer.status == 200:
                    return
        except aiohttp.ClientError:
            pass  # not listening yet
        await asyncio.sleep(0.05)
    raise AssertionError("the router did not become ready")
