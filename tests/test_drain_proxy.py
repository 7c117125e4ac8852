"""The proxy's drain: on SIGTERM a real ``scaler proxy`` process stops admitting (busy
503 with ``X-Scaler-Busy: draining``, /readyz 503), finishes the answers it holds, and
only then stops listening, which is what the Ollama container's preStop waits for."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from scaler.proxy.admission import Admission
from tests.support.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.support.router_process import START_TIMEOUT, _wait_ready, free_port
from tests.support.waits import wait_until

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def test_idle_waits_for_every_held_and_queued_slot() -> None:
    admission = Admission(parallel=1, max_queue=1)
    await admission.idle()  # nothing held: returns at once
    release = asyncio.Event()

    async def hold() -> None:
        async with admission.slot():
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await asyncio.sleep(0)
    assert (admission.active, admission.queued) == (1, 1)
    idle = asyncio.create_task(admission.idle())
    await asyncio.sleep(0)
    assert not idle.done()
    release.set()
    await asyncio.gather(*holders)
    await asyncio.wait_for(idle, 1.0)
    assert (admission.active, admission.queued) == (0, 0)


@contextmanager
def proxy_process(
    upstream: str,
    log: Path,
    *,
    drain_timeout: float,
    max_queue: int = 0,
    more: tuple[str, ...] = (),
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port("127.0.0.1")
    args = [sys.executable, "-m", "scaler.cli", "proxy", "--host", "127.0.0.1"]
    args += ["--port", str(port), "--upstream", upstream, "--max-queue", str(max_queue)]
    args += ["--drain-timeout", str(drain_timeout), *more]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process, log, START_TIMEOUT)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _stream_in_thread(url: str, lines: list[dict[str, object]]) -> threading.Thread:
    """Stream one chat into ``lines``; a cut-off answer ends with ``{"cut": ...}``."""

    def run() -> None:
        try:
            with (
                httpx.Client(timeout=30, trust_env=False) as http,
                http.stream("POST", f"{url}/api/chat", json=CHAT) as response,
            ):
                lines.extend(json.loads(line) for line in response.iter_lines() if line)
        except httpx.HTTPError as error:
            lines.append({"cut": str(error)})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def slow_fake() -> Iterator[RunningFakeOllama]:
    with running_fake_ollama(tokens=30, tokens_per_second=30.0) as fake:  # ~1 s answers
        yield fake


def test_sigterm_refuses_new_requests_finishes_the_answer_then_exits(
    slow_fake: RunningFakeOllama, tmp_path: Path
) -> None:
    with proxy_process(slow_fake.url, tmp_path / "proxy.log", drain_timeout=30) as (url, process):
        lines: list[dict[str, object]] = []
        streaming = _stream_in_thread(url, lines)
        wait_until(lambda: slow_fake.stats().active == 1)
        process.send_signal(signal.SIGTERM)
        with httpx.Client(timeout=5, trust_env=False) as http:
            wait_until(lambda: http.get(f"{url}/readyz").status_code == 503)
            refused = http.post(f"{url}/api/chat", json=CHAT)
            assert refused.status_code == 503
            assert refused.headers["X-Scaler-Busy"] == "draining"
            assert process.poll() is None  # still holding the answer
        streaming.join(10)
        assert lines and lines[-1]["done"] is True and len(lines) == 31  # 30 tokens + the end
        assert process.wait(10) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", trust_env=False)  # no longer listening: preStop ends
    assert "drained: nothing in flight" in (tmp_path / "proxy.log").read_text()


def test_an_idle_proxy_exits_at_once_and_a_stuck_one_after_its_drain_timeout(
    slow_fake: RunningFakeOllama, tmp_path: Path
) -> None:
    with proxy_process(slow_fake.url, tmp_path / "idle.log", drain_timeout=30) as (_, process):
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert time.monotonic() - started < 5  # not the 30 s drain timeout
    slow_fake.set_tokens(100_000)  # an answer that outlives any grace period
    with proxy_process(slow_fake.url, tmp_path / "stuck.log", drain_timeout=0.5) as (url, process):
        lines: list[dict[str, object]] = []
        streaming = _stream_in_thread(url, lines)
        wait_until(lambda: slow_fake.stats().active == 1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0  # 0.5 s drain, then at most AFTER_DRAIN_TIMEOUT
        streaming.join(10)
        assert "cut" in lines[-1] or "error" in lines[-1]  # bounded: the kubelet would kill it
    assert "drain timed out after 0.5 s" in (tmp_path / "stuck.log").read_text()


def test_sigterm_with_drain_queued_serve_answers_the_queue_then_exits(
    slow_fake: RunningFakeOllama, tmp_path: Path
) -> None:
    # The cpu-hpa overlay's proxy: its own queue, served on SIGTERM (docs/proxy.md, Drain).
    serve = ("--drain-queued", "serve")
    log = tmp_path / "serve.log"
    with proxy_process(slow_fake.url, log, drain_timeout=30, max_queue=4, more=serve) as (
        url,
        process,
    ):
        answers: list[list[dict[str, object]]] = [[], [], []]
        streams = [_stream_in_thread(url, answers[0])]
        wait_until(lambda: slow_fake.stats().active == 1)
        streams += [_stream_in_thread(url, lines) for lines in answers[1:]]
        with httpx.Client(timeout=5, trust_env=False) as http:
            queue_depth = "ollama_proxy_queue_depth 2.0"
            wait_until(lambda: queue_depth in http.get(f"{url}/metrics").text)
            process.send_signal(signal.SIGTERM)
            wait_until(lambda: http.get(f"{url}/readyz").status_code == 503)
        for stream in streams:
            stream.join(10)
        for lines in answers:  # each whole: 30 tokens and the end
            assert len(lines) == 31 and lines[-1]["done"] is True, lines[-1:]
        assert process.wait(10) == 0
    assert slow_fake.stats().max_active_seen == 1
    assert "draining: serving 2 queued request(s)" in log.read_text()
