"""``scaler router`` as the real command: flags, bad input, and a graceful stop.

The router runs as a child process, as in its pod; the fake Ollama in this process.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx
import ollama
import pytest

from tests.support.fake_kube import FakeKube
from tests.support.fake_kube_watch import endpoint_slice, pod_endpoint
from tests.support.fake_ollama import running_fake_ollama
from tests.support.waits import wait_until

MODEL = "llama3.2"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _router_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "scaler.cli", "router", *args]


@contextmanager
def running_router(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = _free_port()
    argv = _router_command("--host", "127.0.0.1", "--port", str(port), *args)
    child = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or child.poll() is not None:
                raise AssertionError(f"router did not start: {child.poll()}")
            time.sleep(0.05)
        yield child, url
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        assert child.stderr is not None
        child.stderr.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "give either --endpoint URL (one or more) or --service NAME", id="none"),
        pytest.param(["--endpoint", "http://a:1", "--service", "ollama"], "not both", id="both"),
        pytest.param(
            ["--endpoint", "ftp://a"], "endpoint 'ftp://a' is not http://HOST:PORT", id="url"
        ),
        pytest.param(
            ["--endpoint", "http://a:1", "--parallel", "0"],
            "parallel: Input should be greater than or equal to 1 (got 0)",
            id="parallel",
        ),
        pytest.param(
            ["--endpoint", "http://a:1", "--max-queue", "-1"],
            "max_queue: Input should be greater than or equal to 0 (got -1)",
            id="queue",
        ),
        pytest.param(["--service", "Not_A_Name"], "service: String should match", id="service"),
        pytest.param(
            ["--endpoint", "http://a:1", "--cold-start-wait", "-1"],
            "cold_start_wait: Input should be greater than or equal to 0 (got -1.0)",
            id="cold-start-wait",
        ),
    ],
)
def test_bad_flags_exit_2_naming_the_setting_and_value(args: list[str], message: str) -> None:
    done = subprocess.run(_router_command(*args), capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "scaler router: invalid configuration" in done.stderr
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("drain_timeout", "served", "refused"),
    [
        ("240", {"first", "second"}, {}),  # the queue drains in time: both answered
        ("0.2", {"first"}, {"second": 503}),  # it does not: 503 + Retry-After, no reset
    ],
)
def test_sigterm_finishes_the_stream_serves_the_queue_within_the_drain_timeout_then_exits_0(
    drain_timeout: str, served: set[str], refused: dict[str, int]
) -> None:
    with (
        running_fake_ollama(slots=1, tokens=60, tokens_per_second=60) as fake,
        running_router(
            "--endpoint", fake.url, "--drain-timeout", drain_timeout, "--log-level", "warning"
        ) as (child, url),
    ):
        answers: dict[str, str] = {}
        errors: dict[str, int] = {}

        def chat(name: str) -> None:
            with ollama.Client(host=url) as client:
                try:
                    parts = client.chat(
                        model=MODEL, messages=[{"role": "user", "content": name}], stream=True
                    )
                    answers[name] = "".join(p.message.content or "" for p in parts)
                except ollama.ResponseError as error:
                    errors[name] = error.status_code

        threads = [threading.Thread(target=chat, args=(name,)) for name in ("first", "second")]
        threads[0].start()
        wait_until(lambda: fake.stats().active == 1)
        threads[1].start()
        wait_until(lambda: _metric(url, "scaler_router_queue_depth") == 1)
        child.send_signal(signal.SIGTERM)  # one streaming, one queued
        wait_until(lambda: _refused(url))  # stops listening at once
        for thread in threads:
            thread.join(15)
        assert child.wait(15) == 0
    assert set(answers) == served and all(answers.values())
    assert errors == refused
    assert fake.stats().served == len(served)


def _metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


def _refused(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=0.5)
    except httpx.ConnectError:
        return True
    return False


async def test_the_router_finds_pods_through_endpointslices_and_follows_them(
    tmp_path: Path,
) -> None:
    """The real command, discovery through the fake API server over HTTP: not ready
    before the first list, then serving the slices' pods as they come and go."""
    with running_fake_ollama(tokens=3) as first, running_fake_ollama(tokens=3) as second:
        async with FakeKube() as kube:
            kube.slices.add(_slice("ollama-a", first.port))
            kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="chatbot")
            port = _free_port()
            argv = _router_command("--host", "127.0.0.1", "--port", str(port), "--service")
            argv += ["ollama", "--namespace", "chatbot", "--kubeconfig", str(kubeconfig)]
            child = await asyncio.create_subprocess_exec(*argv, "--log-level", "warning")
            url = f"http://127.0.0.1:{port}"
            try:
                async with aiohttp.ClientSession() as http:
                    await _until(http, url, lambda pods: pods.get("ready") == 1)
                    assert await _chat(http, url) == 200
                    assert first.stats().served == 1
                    kube.slices.add(_slice("ollama-b", second.port))
                    kube.slices.delete("chatbot", "ollama-a")
                    await _until(
                        http,
                        url,
                        lambda pods: pods == {"ready": 1, "terminating": 0, "not_ready": 0},
                    )
                    assert await _chat(http, url) == 200
                    assert (first.stats().served, second.stats().served) == (1, 1)
            finally:
                child.terminate()
                assert await asyncio.wait_for(child.wait(), 15) == 0


def _slice(pod: str, port: int) -> dict[str, object]:
    return endpoint_slice(
        "chatbot",
        pod,
        service="ollama",
        endpoints=[pod_endpoint(pod, "127.0.0.1")],
        ports=[("http", port)],
    )


async def _chat(http: aiohttp.ClientSession, url: str) -> int:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    async with http.post(url + "/api/chat", json=body) as answer:
        await answer.read()
        return answer.status


async def _until(
    http: aiohttp.ClientSession, url: str, pods: Callable[[dict[str, int]], bool]
) -> None:
    """Until /readyz answers 200 with pod counts that satisfy ``pods``."""
    deadline = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < deadline:
        try:
            async with http.get(url + "/readyz") as answer:
                if answer.status == 200 and pods((await answer.json())["pods"]):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)  # the fake API server shares this loop
    raise AssertionError("the router did not reach the expected pods")
