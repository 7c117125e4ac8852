"""Admission into slots, as timelines of requests arriving, finishing and giving up."""

from __future__ import annotations

import asyncio

import pytest

from scaler.proxy.admission import Admission, QueueFull


async def _hold(admission: Admission, release: asyncio.Event, log: list[str], name: str) -> None:
    async with admission.slot():
        log.append(name)
        await release.wait()


async def test_requests_beyond_the_slots_wait_in_order_and_beyond_the_queue_are_refused() -> None:
    admission = Admission(parallel=1, max_queue=2)
    done = {name: asyncio.Event() for name in "abc"}
    log: list[str] = []
    tasks = [asyncio.create_task(_hold(admission, done[n], log, n)) for n in "abc"]
    await asyncio.sleep(0)
    assert (admission.active, admission.queued, log) == (1, 2, ["a"])
    with pytest.raises(QueueFull, match="the queue of 2 requests is full"):
        async with admission.slot():
            pass
    done["a"].set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert (admission.active, admission.queued, log) == (1, 1, ["a", "b"])
    done["b"].set()
    done["c"].set()
    await asyncio.gather(*tasks)
    assert (admission.active, admission.queued, log) == (0, 0, ["a", "b", "c"])


async def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    admission = Admission(parallel=1, max_queue=5)
    release = asyncio.Event()
    log: list[str] = []
    first = asyncio.create_task(_hold(admission, release, log, "first"))
    await asyncio.sleep(0)
    quitter = asyncio.create_task(_hold(admission, release, log, "quitter"))
    last = asyncio.create_task(_hold(admission, release, log, "last"))
    await asyncio.sleep(0)
    assert admission.queued == 2
    quitter.cancel()
    await asyncio.gather(quitter, return_exceptions=True)
    assert admission.queued == 1
    release.set()
    await asyncio.gather(first, last)
    assert log == ["first", "last"]
    assert (admission.active, admission.queued) == (0, 0)


async def test_a_slot_handed_over_at_the_moment_of_cancellation_is_passed_on() -> None:
    admission = Admission(parallel=1, max_queue=5)
    await admission._acquire()  # "first" holds the slot
    unlucky = asyncio.create_task(admission._acquire())
    third = asyncio.create_task(admission._acquire())
    await asyncio.sleep(0)
    assert admission.queued == 2
    admission._release()  # "first" is done: the slot is promised to "unlucky" ...
    unlucky.cancel()  # ... whose client leaves before it runs
    await asyncio.gather(unlucky, return_exceptions=True)
    await third  # the slot went on to "third"
    assert (admission.active, admission.queued) == (1, 0)
    admission._release()
    assert admission.active == 0


async def test_parallel_slots_and_an_empty_queue_bound() -> None:
    admission = Admission(parallel=3, max_queue=0)
    release = asyncio.Event()
    tasks = [asyncio.create_task(_hold(admission, release, [], str(i))) for i in range(3)]
    await asyncio.sleep(0)
    assert admission.active == 3
    with pytest.raises(QueueFull):
        async with admission.slot():
            pass
    release.set()
    await asyncio.gather(*tasks)
    assert admission.active == 0


def test_nonsense_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="parallel 0 must be >= 1"):
        Admission(parallel=0, max_queue=1)
