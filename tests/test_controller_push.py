"""The controller with pushed queues: a change decides at once, a broken stream falls
back to the poll and comes back, wakes are coalesced. Stand-in routers on loopback; the
Deployment, the clock and Prometheus are fakes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from scaler.controller.loop import Controller
from scaler.controller.metrics import build_metrics
from scaler.controller.reading import readers_for
from scaler.controller.target import TargetReconciler
from scaler.logs import FIELDS
from tests.support.fakes import FakeActuator, FakeClock, FakeDeployment, FakeSource
from tests.support.push_rig import KEY, PushRig, WaitingClock
from tests.support.queue_stream_stand_in import queue_stream_stand_ins
from tests.support.waits import until
from tests.test_controller import _config


async def test_a_queue_step_is_patched_before_the_next_poll(
    http_session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scaler.controller")
    async with queue_stream_stand_ins(2) as (routers, addresses, port):
        clock = WaitingClock()
        rig = PushRig(http_session, addresses, port, clock)
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
    http_session: aiohttp.ClientSession,
) -> None:
    async with queue_stream_stand_ins(1) as ([router], addresses, port):
        clock = FakeClock()
        rig = PushRig(http_session, addresses, port, clock)
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
