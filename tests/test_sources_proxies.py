"""The fast path: each ready pod's proxy read directly, on its own loopback address."""

from __future__ import annotations

import aiohttp
import pytest

from scaler.sources.base import (
    BadResponse,
    ConnectionFailed,
    EmptyResult,
    HttpStatus,
    QueryTimeout,
)
from scaler.sources.proxies import ProxyScraper, sum_series
from tests.proxy_stand_ins import stand_ins

SERIES = ("ollama_proxy_queue_depth", "ollama_proxy_requests_in_flight")


async def test_the_series_are_summed_over_every_pod() -> None:
    async with stand_ins(3) as (proxies, urls), aiohttp.ClientSession() as session:
        for i, proxy in enumerate(proxies):
            proxy.queue.set(i)
            proxy.in_flight.set(1)
        sample = await ProxyScraper(session, timeout=1).total(urls, SERIES, now=5.0)
    assert (sample.value, sample.timestamp) == (0 + 1 + 2 + 3, 5.0)


async def test_one_pod_that_cannot_be_read_fails_the_whole_reading() -> None:
    async with stand_ins(2) as (proxies, urls), aiohttp.ClientSession() as session:
        scraper = ProxyScraper(session, timeout=0.2)
        proxies[1].status = 503
        with pytest.raises(HttpStatus):
            await scraper.total(urls, SERIES, now=0)
        proxies[1].status, proxies[1].delay = 200, 1.0
        with pytest.raises(QueryTimeout):
            await scraper.total(urls, SERIES, now=0)
        with pytest.raises(ConnectionFailed):
            await scraper.total(["http://127.0.0.30:9/metrics"], SERIES, now=0)
        with pytest.raises(EmptyResult, match="no ready pod"):
            await scraper.total([], SERIES, now=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("ollama_proxy_queue_depth 3.0\n", 3.0, id="plain"),
        pytest.param('ollama_proxy_queue_depth{model="x"} 2\n', 2.0, id="labelled"),
        pytest.param(
            "# HELP ollama_proxy_queue_depth q\nollama_proxy_queue_depth 1 1700000000000\n"
            "ollama_proxy_queue_depth_max 50\nollama_proxy_requests_in_flight 2\n",
            3.0,
            id="timestamp-and-a-longer-name",
        ),
    ],
)
def test_sum_series_reads_the_text_format(text: str, expected: float) -> None:
    assert sum_series(text, SERIES, source="x") == expected


def test_sum_series_names_what_is_wrong() -> None:
    with pytest.raises(BadResponse, match="cannot read the sample"):
        sum_series("ollama_proxy_queue_depth lots\n", SERIES, source="x")
    with pytest.raises(EmptyResult, match="exports none of"):
        sum_series("something_else 1\n", SERIES, source="x")
