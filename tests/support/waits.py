"""Bounded waits on a condition, for tests against real servers, threads and processes.

A test that needs something to have happened first waits for the state that shows it
happened, never for a fixed time: a fixed sleep is too short on a loaded machine (a
flaky test) or longer than needed (a slow one). The poll interval below is only how
often the condition is looked at; the bound is what fails the test.

    wait_until(lambda: proxy.admission.active == 1, what="the first request runs")
    await until(lambda: len(fake.requests) == 2)

Both return the predicate's first truthy value, so a wait can also fetch what it waited
for. Unit tests with a fake clock need neither: they advance the clock instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL = 0.005
"""Seconds between two looks at the condition."""


def wait_until(
    predicate: Callable[[], T], *, timeout: float = 20.0, what: str = "the condition"
) -> T:
    """Block until ``predicate()`` is truthy; fail the test after ``timeout`` seconds."""
    expired = _deadline(timeout, what)
    while not (result := predicate()):
        expired()
        time.sleep(POLL)
    return result


async def until(
    predicate: Callable[[], T], *, timeout: float = 20.0, what: str = "the condition"
) -> T:
    """``wait_until`` without blocking the caller's event loop (servers on it keep running)."""
    expired = _deadline(timeout, what)
    while not (result := predicate()):
        expired()
        await asyncio.sleep(POLL)
    return result


def _deadline(timeout: float, what: str) -> Callable[[], None]:
    """A check that fails the test once ``timeout`` seconds have passed from now."""
    end = time.monotonic() + timeout

    def expired() -> None:
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not hold within {timeout} s")

    return expired
