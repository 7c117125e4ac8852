"""Shared fixtures: the Prometheus ones live in ``tests/support/prometheus_fixtures.py``."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.prometheus_fixtures import (  # noqa: F401
    exporter,
    exporter_namespace,
    http_session,
    scraped_prometheus,
)

_SETTLE_STEPS = 10
"""Loop iterations a test's last cancellations get to finish before the check."""


@pytest.fixture
async def _no_task_outlives_the_test() -> AsyncIterator[None]:
    """Every background task has an owner that cancels and awaits it: after the test
    and all its other fixtures are torn down, no task of the test's loop is left."""
    yield
    for _ in range(_SETTLE_STEPS):
        await asyncio.sleep(0)
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    assert not left, f"tasks outlived the test: {sorted(t.get_name() for t in left)}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("asyncio") is not None and isinstance(item, pytest.Function):
            # first, so that it is torn down last: after the fixtures that own tasks
            item.fixturenames.insert(0, "_no_task_outlives_the_test")
