"""The bounded waits the integration tests order events with (tests/support/waits.py)."""

from __future__ import annotations

import itertools

import pytest

from tests.support import waits
from tests.support.waits import until, wait_until


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll without pausing: these tests look at the loop, not at the clock."""
    monkeypatch.setattr(waits, "POLL", 0.0)


def test_a_wait_returns_the_first_truthy_value_of_the_predicate() -> None:
    calls = itertools.count()
    assert wait_until(lambda: [] if next(calls) < 3 else ["done"]) == ["done"]
    assert next(calls) == 4  # looked at four times, no more


def test_a_wait_that_never_holds_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"the reload did not hold within 0 s"):
        wait_until(lambda: False, timeout=0, what="the reload")


async def test_the_async_wait_returns_and_fails_the_same_way() -> None:
    values = iter([0, 0, 7])
    assert await until(lambda: next(values)) == 7
    with pytest.raises(AssertionError, match=r"two ticks did not hold within 0 s"):
        await until(lambda: 0, timeout=0, what="two ticks")
