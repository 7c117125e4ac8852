"""The fast path: each ready pod's proxy, or each router behind one name, read
directly on its own loopback address."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from scaler.sources.base import (
    MAX_PLAUSIBLE,
    BadResponse,
    ConnectionFailed,
    EmptyResult,
    HttpStatus,
    ImplausibleValue,
    IncompleteReading,
    MetricUnavailable,
    QueryTimeout,
)
from scaler.sources.proxies import ProxyScraper, endpoint_urls, sum_series
from scaler.sources.resolver import SystemResolver, lookup_failure, one_family
from tests.support.proxy_stand_ins import stand_ins
from tests.support.router_stand_ins import ROUTER_SERIES, FakeResolver, router_stand_ins

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
        pytest.param(
            "ollama_proxy_queue_depth 3.0\nollama_proxy_requests_in_flight 0\n", 3.0, id="plain"
        ),
        pytest.param(
            'ollama_proxy_queue_depth{model="x"} 2\nollama_proxy_requests_in_flight{a="b"} 1\n',
            3.0,
            id="labelled",
        ),
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


def test_a_pod_missing_one_of_the_series_counts_as_unread() -> None:
    # Issue 13, point 4: a pod exporting only one of the series was fully read.
    with pytest.raises(IncompleteReading, match="exports ollama_proxy_queue_depth but not "):
        sum_series("ollama_proxy_queue_depth 3\n", SERIES, source="x")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("ollama_proxy_queue_depth -5\nollama_proxy_requests_in_flight 0\n", "-5"),
        pytest.param("ollama_proxy_queue_depth 1e13\nollama_proxy_requests_in_flight 0\n", "1e"),
    ],
)
def test_a_sample_no_queue_can_have_is_implausible(text: str, shown: str) -> None:
    with pytest.raises(ImplausibleValue, match=f"x: ollama_proxy_queue_depth = {shown}"):
        sum_series(text, SERIES, source="x")


async def test_one_pod_exporting_a_negative_queue_fails_the_whole_reading() -> None:
    async with stand_ins(3) as (proxies, urls), aiohttp.ClientSession() as session:
        for proxy in proxies:
            proxy.queue.set(1)
        proxies[2].queue.set(-5)  # issue 13: -5 from pods took a Deployment 6 -> 2
        with pytest.raises(ImplausibleValue, match="-5"):
            await ProxyScraper(session, timeout=1).total(urls, SERIES, now=0)


async def test_a_total_beyond_the_bound_is_implausible() -> None:
    async with stand_ins(2) as (proxies, urls), aiohttp.ClientSession() as session:
        for proxy in proxies:
            proxy.queue.set(MAX_PLAUSIBLE)  # each at the bound; together beyond it
        with pytest.raises(ImplausibleValue, match=r"sum to 2e\+12"):
            await ProxyScraper(session, timeout=1).total(urls, SERIES, now=0)


# --- the routers behind one name --------------------------------------------------


async def test_every_address_of_the_name_is_read_and_summed() -> None:
    async with router_stand_ins(2) as (routers, addresses, port), aiohttp.ClientSession() as s:
        assert addresses == ["127.0.0.1", "127.0.0.2"]
        resolver = FakeResolver({"routers.test": addresses})
        routers[0].queue.set(5)
        routers[0].in_flight.set(2)
        routers[1].in_flight.set(1)
        scraper = ProxyScraper(s, timeout=1, resolver=resolver)
        sample = await scraper.total_behind(
            "routers.test", port=port, path="/metrics", series=ROUTER_SERIES, now=7.0
        )
        assert (sample.value, sample.timestamp) == (5 + 2 + 1, 7.0)
        # The name is looked up at every read: a router that joins counts at once.
        resolver.names["routers.test"] = addresses[:1]
        sample = await scraper.total_behind(
            "routers.test", port=port, path="/metrics", series=ROUTER_SERIES, now=8.0
        )
        assert sample.value == 5 + 2
        assert resolver.lookups == ["routers.test"] * 2


async def test_a_dual_stack_answer_reads_each_router_once() -> None:
    async with router_stand_ins(2) as (routers, _, port), aiohttp.ClientSession() as s:
        routers[0].queue.set(3)
        routers[1].queue.set(4)
        # An A and an AAAA record per router, and a repeat: IPv4 only, once each
        # (nothing listens on ::1 here, so reading it would fail the whole reading).
        answer = ["127.0.0.1", "::1", "127.0.0.2", "::2", "127.0.0.1"]
        scraper = ProxyScraper(s, timeout=1, resolver=FakeResolver({"routers.test": answer}))
        sample = await scraper.total_behind(
            "routers.test", port=port, path="/metrics", series=ROUTER_SERIES, now=0
        )
    assert sample.value == 3 + 4


@pytest.mark.parametrize(
    ("answer", "failure", "message"),
    [
        pytest.param([], EmptyResult, "resolves to no address", id="no-address"),
        pytest.param(
            EmptyResult("routers.test resolves to no address"),
            EmptyResult,
            "no address",
            id="nxdomain",
        ),
        pytest.param(
            ConnectionFailed("cannot resolve routers.test"),
            ConnectionFailed,
            "cannot resolve",
            id="dns-down",
        ),
    ],
)
async def test_a_name_without_routers_is_a_typed_failure(
    answer: list[str] | MetricUnavailable, failure: type[MetricUnavailable], message: str
) -> None:
    async with aiohttp.ClientSession() as session:
        resolver = FakeResolver({"routers.test": answer})
        scraper = ProxyScraper(session, timeout=1, resolver=resolver)
        with pytest.raises(failure, match=message):
            await scraper.total_behind(
                "routers.test", port=9, path="/metrics", series=ROUTER_SERIES, now=0
            )


async def test_one_router_that_cannot_be_read_fails_the_whole_reading() -> None:
    async with router_stand_ins(2) as (routers, addresses, port), aiohttp.ClientSession() as s:
        scraper = ProxyScraper(s, timeout=1, resolver=FakeResolver({"r.test": addresses}))
        routers[1].server.status = 503
        with pytest.raises(HttpStatus, match=r"127\.0\.0\.2"):
            await scraper.total_behind(
                "r.test", port=port, path="/metrics", series=ROUTER_SERIES, now=0
            )


async def test_the_lookup_and_the_reads_share_one_timeout() -> None:
    async with aiohttp.ClientSession() as session:
        resolver = FakeResolver({"r.test": ["127.0.0.1"]}, stalled=asyncio.Event())
        scraper = ProxyScraper(session, timeout=0.05, resolver=resolver)
        with pytest.raises(QueryTimeout, match=r"r\.test"):
            await scraper.total_behind(
                "r.test", port=9, path="/metrics", series=ROUTER_SERIES, now=0
            )


async def test_the_system_resolver_reads_hosts_and_literals() -> None:
    resolver = SystemResolver()
    assert "127.0.0.1" in await resolver.resolve("localhost")  # /etc/hosts, no DNS query
    assert list(await resolver.resolve("127.0.0.2")) == ["127.0.0.2"]


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        pytest.param(socket.EAI_NONAME, EmptyResult, id="nxdomain"),
        pytest.param(socket.EAI_AGAIN, ConnectionFailed, id="temporary"),
    ],
)
def test_a_failed_lookup_is_named(code: int, failure: type[MetricUnavailable]) -> None:
    error = lookup_failure("r.test", socket.gaierror(code, "what the resolver said"))
    assert isinstance(error, failure) and "r.test" in str(error)


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        pytest.param(["10.0.0.1"], ["http://10.0.0.1:11434/metrics"], id="ipv4"),
        pytest.param(["fd00::7"], ["http://[fd00::7]:11434/metrics"], id="ipv6"),
        pytest.param(["fe80::1%eth0"], ["http://[fe80::1%25eth0]:11434/metrics"], id="zone"),
    ],
)
def test_endpoint_urls(addresses: list[str], expected: list[str]) -> None:
    assert endpoint_urls(addresses, 11434, "/metrics") == expected


def test_an_ipv6_only_answer_is_kept() -> None:
    assert one_family(["fd00::1", "fd00::2", "fd00::1"]) == ("fd00::1", "fd00::2")
