"""The controller with pushed queues under load and with real parts: a storm of 1,000
changes a second, a real ``scaler router``'s stream, and ``scaler run`` itself."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scaler.controller.app import serving
from scaler.logs import FIELDS
from tests.support.fake_kube import FakeKube
from tests.support.loopback import no_env_proxy
from tests.support.push_rig import KEY, PushRig, RealClock, push_config
from tests.support.queue_stream_stand_in import QueueStreamStandIn, queue_stream_stand_ins
from tests.support.router_rig import MODEL, router_rig
from tests.support.threaded_server import ThreadedServer
from tests.support.waits import until


async def test_a_push_storm_costs_little_cpu_and_one_patch_per_decision_allowed(
    http_session: aiohttp.ClientSession,
) -> None:
    router = QueueStreamStandIn()
    with ThreadedServer(router.app) as server:  # its CPU is another thread's
        rig = PushRig(http_session, ["127.0.0.1"], server.port, RealClock())
        async with rig.running(rig.feed.run()):
            await until(lambda: rig.sample("scaler_push_streams", metric="queue") == 1)
            async with rig.running(rig.controller.run()):
                await until(lambda: rig.decisions("poll") == 1, what="the first poll")
                wall, cpu = time.monotonic(), time.thread_time()
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(_storm(router, 3.0), server.loop)
                )
                wall, cpu = time.monotonic() - wall, time.thread_time() - cpu
    assert router.seq >= 2900  # 1,000 changes a second reached the stream
    assert cpu < 0.2 * wall, f"{cpu:.2f} s of CPU in {wall:.2f} s"
    pushed = rig.decisions("push")
    assert pushed is not None and 10 <= pushed <= wall / rig.config.push_min_interval + 1
    # Each decision wanted more than 2 pods; +100 % per 15 s allows one step to 4.
    assert rig.actuator.scaled == [("chatbot", "ollama", 4)]


async def _storm(router: QueueStreamStandIn, seconds: float) -> None:
    """1,000 queue changes a second, between 8 and 27 queued, paced by the clock."""
    started, changes = time.monotonic(), 0
    while (elapsed := time.monotonic() - started) < seconds:
        while changes < elapsed * 1000:
            changes += 1
            router.set(8 + changes % 20, 0)
        await asyncio.sleep(0.005)


async def test_the_real_routers_queue_wakes_the_decision(
    http_session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scaler.controller")
    fake = {"slots": 1, "tokens": 20, "tokens_per_second": 50}  # 0.4 s an answer
    with router_rig(pods=1, fake=fake) as router:
        rig = PushRig(http_session, ["127.0.0.1"], router.server.port, RealClock())
        async with rig.running(rig.feed.run()):
            await until(lambda: rig.sample("scaler_push_streams", metric="queue") == 1)
            async with rig.running(rig.controller.run()):
                await until(lambda: rig.decisions("poll") == 1, what="the first poll")
                chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
                asks = [
                    http_session.post(f"{router.url}/api/chat", json={**chat, "stream": False})
                    for _ in range(3)
                ]
                answers = await asyncio.gather(*(_status(ask) for ask in asks))
                await until(lambda: rig.actuator.scaled, what="the PATCH")
    assert answers == [200, 200, 200]
    assert rig.actuator.scaled == [("chatbot", "ollama", 3)]  # 3 in the system, 1 a pod
    scaled = [r for r in caplog.records if getattr(r, FIELDS, {}).get("action") == "scaled"]
    assert [getattr(r, FIELDS)["trigger"] for r in scaled] == ["push"]


async def _status(ask: Any) -> int:
    async with ask as response:
        await response.read()
        return int(response.status)


async def test_scaler_run_follows_the_routers_and_stops_every_stream(
    http_session: aiohttp.ClientSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_env_proxy(monkeypatch)
    async with FakeKube() as kube, queue_stream_stand_ins(1) as ([router], [address], port):
        kube.add_deployment("chatbot", "ollama", replicas=2)
        config = push_config(port, pollInterval=30, prometheusUrl="http://127.0.0.1:9")
        data = config.model_dump(by_alias=True, exclude_none=True)
        data["targets"][0]["metrics"][0]["direct"]["host"] = address
        data.update(metricsHost="127.0.0.1", metricsPort=0, leaderElection={"enabled": False})
        config = type(config).model_validate(data)
        kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
        async with serving(config, kubeconfig=kubeconfig) as (service, metrics_port):
            streams = service.metrics.push_streams.labels(*KEY, "queue")
            await until(lambda: streams._value.get() == 1, what="the router's stream")
            await until(lambda: service.controller.ticks >= 1, what="the first poll")
            router.set(8, 0)  # 30 s before the next poll
            await until(lambda: kube.calls("PATCH", "/scale$"), what="the PATCH")
            async with http_session.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                text = await response.text()
    assert 'scaler_push_streams{deployment="ollama",metric="queue",namespace="chatbot"} 1.0' in text
    pushed = (
        'scaler_decisions_by_trigger_total{deployment="ollama",namespace="chatbot",trigger="push"}'
    )
    assert f"{pushed} 0.0" not in text and pushed in text
