"""Fixtures for one real Prometheus scraping one steerable exporter per session.

``tests/conftest.py`` imports them, so every test file can use them:

    async def test_queue_follows(exporter, exporter_namespace, scraped_prometheus):
        exporter.set_queue_depth("ollama-0", 4, namespace=exporter_namespace)
        await wait_for_async(
            scraped_prometheus,
            f'sum(ollama_proxy_queue_depth{{namespace="{exporter_namespace}"}}) == 4',
        )

Both servers run for the whole session (Prometheus's first scrape costs ~6 s), so a
test keeps its series apart under its own ``exporter_namespace`` label value; they are
removed when the test ends, and Prometheus marks them stale at its next scrape.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.support.exporter import Exporter, running_exporter
from tests.support.prometheus_server import (
    PrometheusServer,
    prometheus_server,
    scrape_job,
    wait_for,
)

EXPORTER_JOB = "exporter"
"""``job`` label of the exporter's series in ``scraped_prometheus``."""
SCRAPE_INTERVAL = 1.0
"""Seconds between scrapes of the exporter: a step shows in queries within ~1.1 s."""

_namespaces = itertools.count()


@pytest.fixture(scope="session")
def exporter() -> Iterator[Exporter]:
    """A running ``tests.support.exporter.Exporter`` on 127.0.0.1, shared by the session."""
    with running_exporter() as running:
        yield running


@pytest.fixture(scope="session")
def scraped_prometheus(
    exporter: Exporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping ``exporter`` every second as job ``exporter``; yielded
    once the first scrape has landed (``up{job="exporter"} == 1``)."""
    job = scrape_job(EXPORTER_JOB, exporter.target)
    workdir = tmp_path_factory.mktemp("scraped-prometheus")
    with prometheus_server(workdir, scrape_configs=[job], scrape_interval=SCRAPE_INTERVAL) as p:
        wait_for(p, f'up{{job="{EXPORTER_JOB}"}} == 1')
        yield p


@pytest.fixture
def exporter_namespace(exporter: Exporter, request: pytest.FixtureRequest) -> Iterator[str]:
    """A ``namespace`` label value no other test uses, e.g. ``t3-test-one-value``; the
    exporter stops exporting its series after the test."""
    name = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())
    namespace = f"t{next(_namespaces)}-{name}"[:63].rstrip("-")
    try:
        yield namespace
    finally:
        exporter.remove_namespace(namespace)


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """An ``aiohttp.ClientSession`` on the test's event loop, closed afterwards."""
    async with aiohttp.ClientSession() as session:
        yield session
