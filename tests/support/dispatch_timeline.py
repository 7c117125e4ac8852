"""The dispatcher on a timeline: a clock the test moves and the callbacks the dispatcher
scheduled on it, so no test waits in real time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from scaler.router.dispatch import Dispatcher, Pod
from scaler.router.endpoints import Endpoint, EndpointState

READY, TERMINATING, NOT_READY = (
    EndpointState.READY,
    EndpointState.TERMINATING,
    EndpointState.NOT_READY,
)


class Timeline:
    """A clock the test moves, and the callbacks the dispatcher scheduled on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        return self.now

    def schedule(self, delay: float, callback: Callable[[], None]) -> None:
        self.timers.append((self.now + delay, callback))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = sorted((t for t in self.timers if t[0] <= self.now), key=lambda t: t[0])
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, callback in due:
            callback()


def pods(**states: EndpointState) -> dict[str, Endpoint]:
    return {key: Endpoint(key, f"http://{key}:11434", state) for key, state in states.items()}


def make(
    timeline: Timeline,
    *,
    parallel: int = 1,
    max_queue: int = 8,
    wait: float = 10.0,
    cold_start_wait: float = 0.0,
) -> Dispatcher:
    return Dispatcher(
        parallel=parallel,
        max_queue=max_queue,
        no_pod_wait=wait,
        cold_start_wait=cold_start_wait,
        clock=timeline.clock,
        schedule=timeline.schedule,
    )


async def arrive(dispatcher: Dispatcher, *, again: bool = False) -> asyncio.Task[Pod]:
    task = asyncio.create_task(dispatcher.acquire(again=again))
    await asyncio.sleep(0)  # let it reach the queue (or take a free slot)
    return task


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)
