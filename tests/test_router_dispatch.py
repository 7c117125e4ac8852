"""The dispatcher as a timeline: a fake clock and a fake scheduler, no real waits.

Each step is one event (an arrival, a completion, a snapshot from discovery) and the
assertions say which request holds which pod afterwards.
"""

from __future__ import annotations

import asyncio

import pytest

from scaler.router.dispatch import BACKOFF_FIRST, Draining, NoReadyPod, QueueFull
from scaler.router.endpoints import Endpoint
from tests.support.dispatch_timeline import (
    NOT_READY,
    READY,
    TERMINATING,
    Timeline,
    arrive,
    make,
    pods,
    settle,
)


async def test_late_binding_the_oldest_waiter_takes_a_pod_that_becomes_ready() -> None:
    t = Timeline()
    d = make(t)
    d.update(pods(a=READY, b=NOT_READY))
    first = await arrive(d)  # t=0: a is free -> first holds a
    assert (await first).key == "a"
    second, third = await arrive(d), await arrive(d)  # both wait: b is not ready
    assert d.queued == 2
    d.update(pods(a=READY, b=READY))  # b turns ready: the OLDEST waiter gets it
    await settle()
    assert second.done() and (await second).key == "b" and not third.done()
    d.release(await first)  # a frees its slot: the next in line
    await settle()
    assert (await third).key == "a" and d.queued == 0 and d.in_flight == 2


async def test_new_arrivals_never_overtake_waiters() -> None:
    t = Timeline()
    d = make(t)
    d.update(pods(a=READY))
    held = await (await arrive(d))
    waiting = await arrive(d)
    d.release(held)  # the slot goes to the waiter, not to whoever arrives next
    late = await arrive(d)
    await settle()
    assert waiting.done() and not late.done()
    late.cancel()


async def test_parallel_slots_and_the_least_loaded_pod() -> None:
    t = Timeline()
    d = make(t, parallel=2)
    d.update(pods(a=READY, b=READY))
    got = [(await (await arrive(d))).key for _ in range(4)]
    assert sorted(got) == ["a", "a", "b", "b"] and got[:2] in (["a", "b"], ["b", "a"])
    fifth = await arrive(d)
    assert not fifth.done() and d.in_flight == 4
    fifth.cancel()


async def test_terminating_and_vanished_pods_finish_their_requests_but_take_nothing_new() -> None:
    t = Timeline()
    d = make(t)
    d.update(pods(a=READY, b=READY))
    on_a, on_b = await (await arrive(d)), await (await arrive(d))
    d.update(pods(a=TERMINATING))  # b vanished from the slices, a is terminating
    assert set(d.pods) == {"a", "b"}  # both still hold a request
    waiting = await arrive(d)
    d.release(on_b)
    d.release(on_a)
    await settle()
    assert not waiting.done() and d.pods == {"a": d.pods["a"]}  # b forgotten, a stays known
    d.update(pods(a=TERMINATING, c=READY))
    await settle()
    assert (await waiting).key == "c"


async def test_a_full_queue_refuses_at_once_but_a_request_sent_back_is_not_refused() -> None:
    t = Timeline()
    d = make(t, max_queue=1)
    d.update(pods(a=READY))
    held = await (await arrive(d))
    queued = await arrive(d)
    with pytest.raises(QueueFull, match="queue of 1 requests is full"):
        await d.acquire()
    back = await arrive(d, again=True)  # refused elsewhere: back to the head, over the bound
    assert d.queued == 2
    d.release(held)
    await settle()
    assert back.done() and not queued.done()
    queued.cancel()


async def test_a_pod_that_refused_is_passed_over_with_a_doubling_backoff() -> None:
    t = Timeline()
    d = make(t)
    d.update(pods(a=READY))
    pod = await (await arrive(d))
    d.refused(pod)  # t=0: another router holds a's slot
    retry = await arrive(d, again=True)
    assert not retry.done()
    t.advance(BACKOFF_FIRST)  # the wake-up after the back-off tries a again
    await settle()
    d.refused(await retry)
    again = await arrive(d, again=True)
    t.advance(BACKOFF_FIRST)  # doubled: not yet
    await settle()
    assert not again.done()
    t.advance(BACKOFF_FIRST)
    await settle()
    d.release(await again)  # success resets the back-off
    assert d.pods["a"].backoff == 0 and d.pods["a"].blocked_until == 0


async def test_with_no_ready_pod_requests_wait_then_fail_and_later_arrivals_fail_at_once() -> None:
    t = Timeline()
    d = make(t, wait=10)
    d.update(pods(a=NOT_READY))  # t=0: nothing ready yet (a readiness flap, a restart)
    waiting = await arrive(d)
    t.advance(9.9)
    await settle()
    assert not waiting.done()
    t.advance(0.1)  # t=10: no pod for 10 s
    await settle()
    with pytest.raises(NoReadyPod, match="no Ollama pod is ready"):
        await waiting
    with pytest.raises(NoReadyPod):
        await d.acquire()  # no hang: refused at once
    d.update(pods(a=READY))  # back: served again
    assert (await (await arrive(d))).key == "a"


async def test_a_pod_returning_within_the_wait_serves_the_waiters() -> None:
    t = Timeline()
    d = make(t, wait=10)
    d.update(pods(a=READY))
    d.update(pods(a=NOT_READY))
    waiting = await arrive(d)
    t.advance(5)
    d.update(pods(a=READY))
    t.advance(10)  # the give-up timer fires, but a pod is ready: nothing fails
    await settle()
    assert (await waiting).key == "a"


async def test_a_waiter_cancelled_as_it_is_bound_passes_its_slot_on() -> None:
    t = Timeline()
    d = make(t)
    d.update(pods(a=READY))
    held = await (await arrive(d))
    first, second = await arrive(d), await arrive(d)
    d.release(held)  # binds first...
    first.cancel()  # ...which is cancelled before it runs: the slot moves on
    await settle()
    assert first.cancelled() and (await second).key == "a" and d.in_flight == 1


async def test_a_reused_pod_name_with_a_new_address_is_a_new_pod() -> None:
    t = Timeline()
    d = make(t)
    d.update(pods(a=READY))
    old = await (await arrive(d))
    d.update({"a": Endpoint("a", "http://10.0.0.9:11434", READY)})
    assert d.pods["a"].url == "http://10.0.0.9:11434" and d.pods["a"] is not old
    assert d.in_flight == 1  # the old pod's request still counts until it ends
    d.release(old)
    assert d.in_flight == 0 and d.pods["a"].active == 0


async def test_a_closed_dispatcher_serves_its_waiters_and_refuses_new_ones_that_would_wait() -> (
    None
):
    timeline = Timeline()
    dispatcher = make(timeline)
    dispatcher.update(pods(a=READY, b=READY))
    held = [await dispatcher.acquire(), await dispatcher.acquire()]
    waiting = asyncio.create_task(dispatcher.acquire())
    await asyncio.sleep(0)
    assert dispatcher.queued == 1
    dispatcher.close("this router is stopping")  # t=0: SIGTERM
    with pytest.raises(Draining, match="this router is stopping"):
        await dispatcher.acquire()  # new, no slot free: refused at once, not queued
    back = asyncio.create_task(dispatcher.acquire(again=True))  # admitted: it may wait
    await asyncio.sleep(0)
    assert dispatcher.queued == 2 and not waiting.done()
    dispatcher.release(held[0])  # a stream ends: the request that came back goes first
    assert (await back).key == held[0].key
    dispatcher.release(held[1])  # the queued request keeps its place and is served
    assert (await waiting).key == held[1].key


async def test_the_drain_deadline_refuses_what_still_waits() -> None:
    timeline = Timeline()
    dispatcher = make(timeline)
    dispatcher.update(pods(a=READY))
    held = await dispatcher.acquire()
    waiting = asyncio.create_task(dispatcher.acquire())
    await asyncio.sleep(0)
    dispatcher.close("this router is stopping")
    dispatcher.refuse_waiting("its queue did not drain in time")  # the deadline
    with pytest.raises(Draining, match="did not drain in time"):
        await waiting
    assert dispatcher.queued == 0
    with pytest.raises(Draining):
        await dispatcher.acquire(again=True)  # nothing may wait any more
    dispatcher.release(held)
    assert (await dispatcher.acquire()).key == held.key  # a free slot still serves
