"""The router at zero pods (scale to zero, issue 15): requests held, bounded, then a clear
503; the model list answered by the models' writer. Real router, real fake Ollamas,
loopback; the last test is the real command finding its pod through EndpointSlices.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx
import ollama

from scaler.router.watch import WATCH_PATH
from tests.support.fake_kube import FakeKube
from tests.support.fake_kube_watch import endpoint_slice, pod_endpoint
from tests.support.fake_ollama import running_fake_ollama
from tests.support.router_process import until_ready
from tests.support.router_rig import MODEL, Rig, router_rig

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}


def _chat_in_thread(rig: Rig, results: list[httpx.Response]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(_post(rig.url)))
    thread.start()
    return thread


def _post(url: str) -> httpx.Response:
    return httpx.post(url + "/api/chat", json=CHAT, timeout=30)


def test_a_request_at_zero_is_held_until_a_pod_is_ready_then_answered() -> None:
    with router_rig(pods=1, ready=0, router={"cold_start_wait": 30, "no_pod_wait": 0}) as rig:
        results: list[httpx.Response] = []
        thread = _chat_in_thread(rig, results)
        rig.wait_until(lambda: rig.router.dispatcher.queued == 1)
        assert rig.sample("scaler_router_queue_depth") == 1  # what the controller reads
        rig.set_pods(rig.snapshot(0))  # the controller's new pod turns ready
        thread.join(20)
        assert results[0].status_code == 200
        assert results[0].json()["message"]["content"]
        assert rig.fakes[0].stats().served == 1


def test_beyond_the_queue_bound_at_zero_the_answer_is_503_at_once() -> None:
    settings = {"cold_start_wait": 30, "max_queue": 1}
    with router_rig(pods=1, ready=0, router=settings) as rig:
        results: list[httpx.Response] = []
        thread = _chat_in_thread(rig, results)
        rig.wait_until(lambda: rig.router.dispatcher.queued == 1)
        started = time.monotonic()
        refused = _post(rig.url)
        assert time.monotonic() - started < 2.0  # not held: refused at the door
        assert refused.status_code == 503 and "Retry-After" in refused.headers
        assert "the queue of 1 requests is full" in refused.json()["error"]
        rig.set_pods(rig.snapshot(0))
        thread.join(20)
        assert results[0].status_code == 200


def test_a_request_held_at_zero_gets_the_clear_503_when_its_wait_is_over() -> None:
    with router_rig(pods=1, ready=0, router={"cold_start_wait": 0.3}) as rig:
        started = time.monotonic()
        refused = _post(rig.url)
        assert time.monotonic() - started >= 0.3
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert error == (
            "server busy, please try again: no Ollama pod is ready (waited 0.3 s for one)"
        )
        assert rig.sample("scaler_router_rejected_total", reason="no_ready_pod") == 1


def _writer_at(url: str) -> dict[str, object]:
    return {"management_upstream": url, "no_pod_wait": 0}


def test_at_zero_the_model_list_is_answered_by_the_writer() -> None:
    with (
        running_fake_ollama() as writer,
        router_rig(pods=1, ready=0, router=_writer_at(writer.url)) as rig,
        ollama.Client(host=rig.url) as client,
    ):
        assert f"{MODEL}:latest" in [m.model for m in client.list().models]  # Open WebUI's
        assert client.show(MODEL).modelfile is not None
        assert client.ps() is not None
        for path in ("/api/version", "/v1/models", f"/v1/models/{MODEL}"):
            assert httpx.get(rig.url + path).status_code == 200, path
        refused = _post(rig.url)  # inference is never the writer's
        assert refused.status_code == 503 and writer.stats().served == 0


def test_at_zero_without_a_writer_the_model_list_is_a_clear_503() -> None:
    with router_rig(pods=1, ready=0, router={"cold_start_wait": 30}) as rig:
        answer = httpx.get(rig.url + "/api/tags")
        assert answer.status_code == 503
        assert "no Ollama pod is ready" in answer.json()["error"]


async def test_the_command_holds_a_request_at_zero_and_serves_it_on_the_first_slice(
    tmp_path: Path,
) -> None:
    """``scaler router`` with SCALER_ROUTER_COLD_START_WAIT, discovery through the fake
    API server: the stream shows the held request, a slice appears, it is answered."""
    with running_fake_ollama(tokens=3) as pod:
        async with FakeKube() as kube:
            kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="chatbot")
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = int(probe.getsockname()[1])
            argv = [
                sys.executable,
                "-m",
                "scaler.cli",
                "router",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--service",
                "ollama",
            ]
            argv += ["--namespace", "chatbot", "--kubeconfig", str(kubeconfig), "--no-pod-wait"]
            env = {**os.environ, "SCALER_ROUTER_COLD_START_WAIT": "30"}
            env = {k: v for k, v in env.items() if "proxy" not in k.lower()}
            child = await asyncio.create_subprocess_exec(
                *argv, "0", "--log-level", "warning", env=env
            )
            url = f"http://127.0.0.1:{port}"
            try:
                async with aiohttp.ClientSession() as http:
                    await until_ready(http, url)
                    await _held_then_served(http, url, lambda: kube.slices.add(_slice(pod.port)))
            finally:
                child.terminate()
                assert await asyncio.wait_for(child.wait(), 15) == 0


async def _held_then_served(
    http: aiohttp.ClientSession, url: str, add_pod: Callable[[], None]
) -> None:
    async with http.get(url + WATCH_PATH) as stream:
        assert json.loads(await stream.content.readline())["queued"] == 0
        chat = asyncio.create_task(_chat(http, url))
        async with asyncio.timeout(20):
            while json.loads(await stream.content.readline())["queued"] != 1:
                pass  # heartbeats until the request is held
        add_pod()
        assert await asyncio.wait_for(chat, 20) == 200


async def _chat(http: aiohttp.ClientSession, url: str) -> int:
    async with http.post(url + "/api/chat", json=CHAT) as answer:
        await answer.read()
        return answer.status


def _slice(port: int) -> dict[str, object]:
    return endpoint_slice(
        "chatbot",
        "ollama-a",
        service="ollama",
        endpoints=[pod_endpoint("ollama-a", "127.0.0.1")],
        ports=[("http", port)],
    )
