"""``--cold-start-wait``: the dispatcher holds requests at zero pods, on a fake clock.

Scale to zero (issue 15): while no pod is ready each request may wait that long from its
own arrival (or from the last pod going, if later), within the queue bound; then the
clear "no Ollama pod is ready". With it at 0 the older rule (``no_pod_wait``) is kept.
"""

from __future__ import annotations

import pytest

from scaler.router.dispatch import NoReadyPod, QueueFull
from tests.support.dispatch_timeline import READY, Timeline, arrive, make, pods, settle


async def test_a_request_at_zero_is_held_until_a_pod_turns_ready_then_served() -> None:
    t = Timeline()
    d = make(t, cold_start_wait=300, wait=0)  # no_pod_wait 0 would refuse it at once
    t.advance(3600)  # an hour at zero: arrivals still wait
    held = await arrive(d)
    t.advance(290)
    assert not held.done() and d.queued == 1
    d.update(pods(a=READY))
    await settle()
    assert (await held).key == "a" and d.queued == 0 and d.in_flight == 1


async def test_each_request_waits_from_its_own_arrival_then_gets_the_clear_refusal() -> None:
    t = Timeline()
    d = make(t, cold_start_wait=300)
    first = await arrive(d)
    t.advance(100)
    second = await arrive(d)
    t.advance(200)  # t=300: the first's wait is over, the second has 100 s left
    await settle()
    with pytest.raises(NoReadyPod, match=r"no Ollama pod is ready \(waited 300 s for one\)"):
        await first
    assert not second.done() and d.queued == 1
    t.advance(99)
    await settle()
    assert not second.done()
    t.advance(1)
    await settle()
    with pytest.raises(NoReadyPod):
        await second
    assert d.queued == 0


async def test_beyond_the_queue_bound_at_zero_the_refusal_is_immediate() -> None:
    t = Timeline()
    d = make(t, cold_start_wait=300, max_queue=2)
    held = [await arrive(d), await arrive(d)]
    with pytest.raises(QueueFull):
        await d.acquire()
    assert d.queued == 2 and not any(task.done() for task in held)
    for task in held:
        task.cancel()
    await settle()
    assert d.queued == 0


async def test_a_request_queued_behind_busy_pods_gets_the_whole_wait_after_they_go() -> None:
    t = Timeline()
    d = make(t, cold_start_wait=300)
    d.update(pods(a=READY))
    busy = await (await arrive(d))
    waiting = await arrive(d)  # t=0, behind the busy pod
    t.advance(1000)  # busy pods are not "no pod": it keeps its place
    d.update({})  # t=1000: the last pod goes
    t.advance(299)
    await settle()
    assert not waiting.done()
    t.advance(1)
    await settle()
    with pytest.raises(NoReadyPod):
        await waiting
    d.release(busy)
    assert d.in_flight == 0


async def test_zero_keeps_the_no_pod_wait_rule_for_the_whole_queue() -> None:
    t = Timeline()
    d = make(t, wait=10)  # cold_start_wait 0: today's behaviour
    first = await arrive(d)
    t.advance(9)
    second = await arrive(d)
    t.advance(1)  # 10 s since the start with no pod: both go, whatever their arrival
    await settle()
    for task in (first, second):
        with pytest.raises(NoReadyPod, match=r"none for 10 s"):
            await task
    with pytest.raises(NoReadyPod):
        await d.acquire()  # and later arrivals at once


async def test_listeners_hear_each_change_of_queued_and_in_flight_once() -> None:
    t = Timeline()
    d = make(t, cold_start_wait=300)
    heard: list[tuple[int, int]] = []
    d.listeners.append(lambda: heard.append((d.queued, d.in_flight)))
    held = await arrive(d)
    d.update(pods(a=READY))
    d.update(pods(a=READY))  # nothing moved: nothing heard
    await settle()
    d.release(await held)
    assert heard == [(1, 0), (0, 1), (0, 0)]
