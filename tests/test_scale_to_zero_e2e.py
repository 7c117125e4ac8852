"""Scale to zero end to end, with real parts on loopback: ``scaler run`` (in-process,
push on) over the fake Kubernetes API server, ``scaler router`` (a process: EndpointSlice
discovery, ``--cold-start-wait``), and a fake kubelet that starts an Ollama pod (the
fake Ollama) some time after the Deployment is scaled up, as a real node would.

A request at zero is held by the router; its queue reaches the controller through the
push stream; the controller scales 0 -> 1; the pod starts and becomes ready; the request
is answered; after ``idleSeconds`` with nothing queued or in flight the controller
scales 1 -> 0, and never before the answer is complete.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scaler.config import ScalerConfig, load, parse_config
from scaler.controller.app import serving
from tests.support.fake_kube import FakeKube
from tests.support.fake_kube_watch import endpoint_slice, pod_endpoint
from tests.support.fake_ollama import running_fake_ollama
from tests.support.loopback import no_env_proxy
from tests.support.router_process import until_ready
from tests.support.router_rig import MODEL
from tests.support.waits import until

STARTUP = 1.5
"""Seconds the fake kubelet takes from the scale-up to a ready pod (image, model load)."""
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}


def _config(router_port: int) -> ScalerConfig:
    """The default target with only its router-read queue metric, minReplicas 0 and a
    one-second idle period; Prometheus unreachable (the routers are read directly)."""
    data = load().model_dump(by_alias=True, exclude_none=True)
    target = data["targets"][0]
    queue = target["metrics"][0]
    queue["direct"].update(host="127.0.0.1", port=router_port)
    target.update(metrics=[queue], minReplicas=0, scaleToZero={"metric": "queue", "idleSeconds": 1})
    data.update(
        prometheusUrl="http://127.0.0.1:9",
        pollInterval=0.5,
        metricsHost="127.0.0.1",
        metricsPort=0,
        leaderElection={"enabled": False},
    )
    return parse_config(data)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _patched_replicas(kube: FakeKube) -> list[int]:
    return [int(r.body["spec"]["replicas"]) for r in kube.calls("PATCH", "/scale$")]


async def _kubelet(kube: FakeKube, ollama_port: int) -> None:
    """Start the pod once the Deployment asks for one: not ready at first, ready (and
    published in the Service's EndpointSlice) ``STARTUP`` seconds later."""
    while kube.get("deployments", "chatbot", "ollama")["spec"]["replicas"] < 1:
        await asyncio.sleep(0.02)
    kube.add_pod("chatbot", "ollama-a", labels={"app": "ollama"}, ready=False, ip="127.0.0.1")
    await asyncio.sleep(STARTUP)
    kube.add_pod("chatbot", "ollama-a", labels={"app": "ollama"}, ready=True, ip="127.0.0.1")
    slice_ = endpoint_slice(
        "chatbot",
        "ollama-a",
        service="ollama",
        endpoints=[pod_endpoint("ollama-a", "127.0.0.1")],
        ports=[("http", ollama_port)],
    )
    kube.slices.add(slice_)


async def _router(kubeconfig: Path, port: int) -> asyncio.subprocess.Process:
    argv = [sys.executable, "-m", "scaler.cli", "router", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--service", "ollama", "--namespace", "chatbot"]
    argv += ["--kubeconfig", str(kubeconfig), "--cold-start-wait", "30"]
    return await asyncio.create_subprocess_exec(*argv, "--log-level", "warning")


async def _chat(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any], float]:
    sent = time.monotonic()
    async with http.post(url + "/api/chat", json=CHAT) as answer:
        body = json.loads(await answer.read())
        return answer.status, body, time.monotonic() - sent


async def test_a_request_at_zero_is_held_a_pod_starts_it_is_answered_then_idle_goes_to_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_env_proxy(monkeypatch)
    with running_fake_ollama(tokens=3) as pod:
        async with FakeKube() as kube:
            kube.add_deployment("chatbot", "ollama", replicas=0)
            kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="chatbot")
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            router = await _router(kubeconfig, port)
            kubelet = asyncio.create_task(_kubelet(kube, pod.port))
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    serving(_config(port), kubeconfig=str(kubeconfig)) as (service, _),
                ):
                    await until_ready(http, url)
                    streams = service.metrics.push_streams.labels("chatbot", "ollama", "queue")
                    await until(lambda: streams._value.get() == 1, what="the push stream")
                    await until(lambda: service.controller.ticks >= 3, what="polls at zero")
                    assert _patched_replicas(kube) == []  # idle at zero: nothing to do

                    status, body, took = await _chat(http, url)
                    assert status == 200 and body["done"] is True and body["message"]["content"]
                    assert took >= STARTUP  # held while the pod started, not refused
                    # 0 -> 1 as soon as the request was queued; never 0 while it waited
                    assert _patched_replicas(kube) == [1]

                    await until(lambda: _patched_replicas(kube) == [1, 0], what="1 -> 0")
            finally:
                kubelet.cancel()
                await asyncio.gather(kubelet, return_exceptions=True)
                router.terminate()
                assert await asyncio.wait_for(router.wait(), 15) == 0
