"""The controller with pushed queues: a change decides at once, a broken stream falls
back to the poll and comes back, and a storm of changes costs bounded CPU and no more
PATCHes than the engine allows. Stand-in routers on loopback; the Deployment, the
clock (where time matters) and Prometheus are fakes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from scaler.config import ScalerConfig
from scaler.controller.loop import Controller
from scaler.controller.metrics import build_metrics
from scaler.controller.push import PushFeed, push_feeds
from scaler.controller.reading import readers_for
from scaler.controller.target import TargetReconciler
from scaler.logs import FIELDS
from scaler.sources.proxies import ProxyScraper
from tests.support.fakes import FakeActuator, FakeClock, FakeDeployment, FakeSource
from tests.support.queue_stream_stand_in import QueueStreamStandIn, queue_stream_stand_ins
from tests.support.router_rig import MODEL, router_rig
from tests.support.router_stand_ins import FakeResolver
from tests.support.threaded_server import ThreadedServer
from tests.support.waits import until
from tests.test_controller import KEY, _config

HOST = "routers.test"
LABELS = {"namespace": "chatbot", "deployment": "ollama"}


class WaitingClock(FakeClock):
    """A fake clock whose sleep lasts until the test moves time (here: never), so
    only a wake can end the loop's rest between polls."""

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.Event().wait()


class PushRig:
    """A controller over the default target, whose queue its routers push."""

    def __init__(
        self, session: aiohttp.ClientSession, addresses: list[str], port: int, clock: FakeClock
    ) -> None:
        self.config = _push_config(port)
        self.clock = clock
        self.source = FakeSource({"queue": 0.0, "cpu": {}})
        self.actuator = FakeActuator({KEY: FakeDeployment(2)})
        self.registry = CollectorRegistry()
        self.metrics = build_metrics(self.registry, self.config)
        resolver = FakeResolver({HOST: addresses})
        target = self.config.targets[0]
        self.feeds = push_feeds(target, self.config, session, self.metrics, resolver=resolver)
        for feed in self.feeds.values():
            feed.clock = clock
        scraper = ProxyScraper(session, timeout=1.0, resolver=resolver)
        readers = readers_for(
            target, source=self.source, metrics=self.metrics, scraper=scraper, feeds=self.feeds
        )
        reconciler = TargetReconciler(
            target,
            config=self.config,
            readers=readers,
            actuator=self.actuator,
            metrics=self.metrics,
            is_leader=lambda: True,
        )
        self.controller = Controller(
            [reconciler],
            metrics=self.metrics,
            clock=clock,
            sleep=clock.sleep,
            push_min_interval=self.config.push_min_interval,
        )
        self.feed.on_change = lambda: self.controller.wake(target.key)

    @property
    def feed(self) -> PushFeed:
        return self.feeds["queue"]

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {**LABELS, **labels})

    def reads(self, source: str) -> float | None:
        return self.sample("scaler_metric_reads_total", metric="queue", source=source)

    def decisions(self, trigger: str) -> float | None:
        return self.sample("scaler_decisions_by_trigger_total", trigger=trigger)

    @asynccontextmanager
    async def running(self, *tasks: Any) -> AsyncIterator[None]:
        """``tasks`` run; all are cancelled and awaited after."""
        started = [asyncio.create_task(task, name="task") for task in tasks]
        try:
            yield
        finally:
            for task in started:
                task.cancel()
            await asyncio.gather(*started, return_exceptions=True)


def _push_config(port: int, **top: Any) -> ScalerConfig:
    config = _config(**top)
    data = config.model_dump(by_alias=True, exclude_none=True)
    data["targets"][0]["metrics"][0]["direct"].update(host=HOST, port=port)
    return type(config).model_validate(data)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_queue_step_is_patched_before_the_next_poll(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scaler.controller")
    async with queue_stream_stand_ins(2) as (routers, addresses, port):
        clock = WaitingClock()
        rig = PushRig(session, addresses, port, clock)
        start = clock.now
        async with rig.running(rig.feed.run()):
            await until(lambda: rig.sample("scaler_push_streams", metric="queue") == 2)
            async with rig.running(rig.controller.run()):
                await until(lambda: rig.decisions("poll") == 1, what="the first poll")
                assert rig.actuator.scaled == [] and clock.slept == [2.0]  # resting till 2 s
                routers[0].set(5, 1)
                routers[1].set(0, 2)  # 8 in the system, on 2 pods
                await until(lambda: rig.actuator.scaled, what="the PATCH")
    # No time passed: the push woke the decision; +100 % of 2 allows 4.
    assert clock.now == start and rig.actuator.scaled == [("chatbot", "ollama", 4)]
    assert rig.decisions("push") >= 1 and rig.decisions("poll") == 1
    assert rig.reads("push") == rig.decisions("push") + 1 and rig.reads("prometheus") == 0
    logged = [r for r in caplog.records if getattr(r, FIELDS, {}).get("action") == "scaled"]
    assert [getattr(r, FIELDS)["trigger"] for r in logged] == ["push"]


async def test_a_broken_stream_falls_back_to_the_poll_then_resubscribes(
    session: aiohttp.ClientSession,
) -> None:
    async with queue_stream_stand_ins(1) as ([router], addresses, port):
        clock = FakeClock()
        rig = PushRig(session, addresses, port, clock)
        controller, retry = rig.controller, asyncio.Event()
        rig.feed.sleep = lambda seconds: retry.wait()  # the backoff lasts until the test says
        router.set(1, 1)
        await rig.feed.refresh()
        try:
            await until(lambda: rig.sample("scaler_push_streams", metric="queue") == 1)
            await controller.tick()
            assert (rig.reads("push"), rig.reads("direct")) == (1, 0)
            router.drop()  # the router restarts
            await until(lambda: rig.sample("scaler_push_streams", metric="queue") == 0)
            clock.now = controller.due[0]  # the next poll, at most one interval later
            await controller.tick()
            assert (rig.reads("push"), rig.reads("direct")) == (1, 1)
            assert rig.sample("scaler_metric_value", metric="queue") == 1.0  # 2 on 2 pods
            retry.set()  # the backoff is over
            await until(lambda: rig.sample("scaler_push_streams", metric="queue") == 1)
            assert router.subscriptions == 2
            clock.now = controller.due[0]
            await controller.tick()
            assert (rig.reads("push"), rig.reads("direct")) == (2, 1)
        finally:
            await rig.feed.close()
    assert rig.sample("scaler_push_errors_total", metric="queue", kind="connection") == 1


class _Waking(TargetReconciler):
    """A target whose queue is pushed while it decides, when ``during`` says so."""

    controller: Controller
    during: list[bool]

    async def reconcile(self, now: float, *, trigger: str = "poll") -> Any:
        if self.during.pop(0):
            self.controller.wake(self.target.key)
        return await super().reconcile(now, trigger=trigger)


async def test_wakes_are_coalesced_and_a_wake_while_deciding_decides_once_more() -> None:
    config = _config(pollInterval=10, pushMinInterval=0.5)
    clock = FakeClock()
    metrics = build_metrics(CollectorRegistry(), config)
    target = config.targets[0]
    reconciler = _Waking(
        target,
        config=config,
        readers=readers_for(target, source=FakeSource({"queue": 1.0, "cpu": {}}), metrics=metrics),
        actuator=FakeActuator({KEY: FakeDeployment(2)}),
        metrics=metrics,
        is_leader=lambda: True,
    )
    controller = Controller([reconciler], metrics=metrics, clock=clock, push_min_interval=0.5)
    reconciler.controller, reconciler.during = controller, [True, True, False]
    start = clock.now
    # A push during the first poll: one more decision at once, on what it pushed.
    assert await controller.tick() == start
    # A push during that one: the next is 0.5 s after it, not at once.
    assert await controller.tick() == start + 0.5
    clock.now = start + 0.5
    assert await controller.tick() == start + 10.5  # nothing pushed: the poll, 10 s on
    clock.now = start + 0.6
    controller.wake(target.key)  # between decisions: 0.5 s after the last push decision
    assert controller.due[0] == start + 1.0 and controller.woken.is_set()
    counted = {
        trigger: metrics.decisions_by_trigger.labels(*KEY, trigger)._value.get()
        for trigger in ("poll", "push")
    }
    assert counted == {"poll": 1, "push": 2}


async def test_a_push_storm_costs_little_cpu_and_one_patch_per_decision_allowed(
    session: aiohttp.ClientSession,
) -> None:
    router = QueueStreamStandIn()
    with ThreadedServer(router.app) as server:  # its CPU is another thread's
        rig = PushRig(session, ["127.0.0.1"], server.port, _RealClock())
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


class _RealClock(FakeClock):
    """Unix time and real sleeps: a storm is about real CPU time."""

    def __call__(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _storm(router: QueueStreamStandIn, seconds: float) -> None:
    """1,000 queue changes a second, between 8 and 27 queued, paced by the clock."""
    started, changes = time.monotonic(), 0
    while (elapsed := time.monotonic() - started) < seconds:
        while changes < elapsed * 1000:
            changes += 1
            router.set(8 + changes % 20, 0)
        await asyncio.sleep(0.005)


async def test_the_real_routers_queue_wakes_the_decision(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scaler.controller")
    fake = {"slots": 1, "tokens": 20, "tokens_per_second": 50}  # 0.4 s an answer
    with router_rig(pods=1, fake=fake) as router:
        rig = PushRig(session, ["127.0.0.1"], router.server.port, _RealClock())
        async with rig.running(rig.feed.run()):
            await until(lambda: rig.sample("scaler_push_streams", metric="queue") == 1)
            async with rig.running(rig.controller.run()):
                await until(lambda: rig.decisions("poll") == 1, what="the first poll")
                chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
                asks = [
                    session.post(f"{router.url}/api/chat", json={**chat, "stream": False})
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
