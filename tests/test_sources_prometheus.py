"""PrometheusSource: every outcome, against a real Prometheus where one can produce it.

The real server (``scraped_prometheus``) scrapes ``exporter`` every second; each test
writes its series under its own ``exporter_namespace``. Failures a real Prometheus
cannot be made to produce on demand (5xx, slowness, malformed bodies, odd timestamps)
come from a tiny fake on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from scaler.errors import ConfigError
from scaler.sources.base import (
    MAX_PLAUSIBLE,
    BadResponse,
    ConnectionFailed,
    EmptyResult,
    HttpStatus,
    ImplausibleValue,
    MissingLabel,
    MultipleSeries,
    NotFinite,
    PodSamples,
    QueryTimeout,
    Sample,
    StaleSample,
)
from scaler.sources.prometheus import QUERY_SHOWN, PrometheusSource
from tests.support.exporter import Exporter
from tests.support.prometheus_server import PrometheusServer

T = TypeVar("T")
WITHIN = 10.0
"""Seconds a real-Prometheus test waits for a scrape to show; typically ~1 s."""


def _source(
    session: aiohttp.ClientSession, url: str, *, timeout: float = 2.0, staleness: float = 5.0
) -> PrometheusSource:
    return PrometheusSource(session, url, timeout=timeout, staleness=staleness)


async def _eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool]) -> T:
    """Poll ``read`` every 0.1 s until ``ok`` holds; fail after ``WITHIN`` seconds."""
    deadline = time.monotonic() + WITHIN
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = await read()
        except EmptyResult as error:  # not scraped yet
            last = error
        else:
            if ok(value):
                return value
            last = value
        await asyncio.sleep(0.1)
    pytest.fail(f"still {last!r} after {WITHIN} s")


async def _scraped(prom: PrometheusSource, query: str, *, series: int) -> None:
    """Wait until ``query`` matches ``series`` series in Prometheus."""
    count = f"count({query})"
    await _eventually(lambda: prom.value(count, now=time.time()), lambda s: s.value == series)


def _queue(namespace: str) -> str:
    return f'ollama_proxy_queue_depth{{namespace="{namespace}"}}'


@pytest.fixture
def prom(
    scraped_prometheus: PrometheusServer, http_session: aiohttp.ClientSession
) -> PrometheusSource:
    return _source(http_session, scraped_prometheus.url)


# --- against a real Prometheus ---------------------------------------------------------


async def test_one_series_is_read_as_one_sample_stamped_with_now(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    exporter.set_queue_depth("ollama-0", 2, namespace=exporter_namespace)
    exporter.set_queue_depth("ollama-1", 3, namespace=exporter_namespace)
    query = f"sum({_queue(exporter_namespace)})"
    await _eventually(lambda: prom.value(query, now=time.time()), lambda s: s.value == 5)
    now = time.time()
    sample = await prom.value(query, now=now)
    # Prometheus stamps an instant query's result with the evaluation time we sent.
    assert sample == Sample(5.0, round(now, 3))


async def test_the_value_follows_a_step_in_the_exporter_within_a_few_scrapes(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    query = f"sum({_queue(exporter_namespace)})"
    exporter.set_queue_depth("ollama-0", 1, namespace=exporter_namespace)
    await _eventually(lambda: prom.value(query, now=time.time()), lambda s: s.value == 1)
    stepped = time.monotonic()
    exporter.set_queue_depth("ollama-0", 7, namespace=exporter_namespace)
    await _eventually(lambda: prom.value(query, now=time.time()), lambda s: s.value == 7)
    assert time.monotonic() - stepped < 3.5  # 1 s scrapes: ~0.1-1.1 s


async def test_per_pod_values_are_keyed_by_the_pod_label(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    exporter.set_queue_depth("ollama-0", 2, namespace=exporter_namespace)
    exporter.set_queue_depth("ollama-1", 3, namespace=exporter_namespace)
    pods = await _eventually(
        lambda: prom.per_pod(_queue(exporter_namespace), now=time.time()),
        lambda p: len(p.samples) == 2,
    )
    assert {pod: s.value for pod, s in pods.samples.items()} == {"ollama-0": 2, "ollama-1": 3}


async def test_per_pod_cpu_summed_by_pod_adds_up_each_pods_containers(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    ns = exporter_namespace
    exporter.add_cpu_seconds("ollama-0", 10, namespace=ns, container="ollama")
    exporter.add_cpu_seconds("ollama-0", 1, namespace=ns, container="proxy")
    exporter.add_cpu_seconds("ollama-1", 4, namespace=ns, container="ollama")
    query = f'sum by (pod) (container_cpu_usage_seconds_total{{namespace="{ns}"}})'
    pods = await _eventually(
        lambda: prom.per_pod(query, now=time.time()), lambda p: len(p.samples) == 2
    )
    assert {pod: s.value for pod, s in pods.samples.items()} == {"ollama-0": 11, "ollama-1": 4}


async def test_a_pod_removed_from_the_exporter_leaves_per_pod_results_at_the_next_scrape(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    exporter.set_queue_depth("ollama-0", 1, namespace=exporter_namespace)
    exporter.set_queue_depth("ollama-1", 1, namespace=exporter_namespace)
    query = _queue(exporter_namespace)
    await _eventually(lambda: prom.per_pod(query, now=time.time()), lambda p: len(p.samples) == 2)
    exporter.remove_pod("ollama-1", namespace=exporter_namespace)
    pods = await _eventually(
        lambda: prom.per_pod(query, now=time.time()), lambda p: len(p.samples) == 1
    )
    assert set(pods.samples) == {"ollama-0"}


async def test_a_query_matching_nothing_is_an_empty_result(prom: PrometheusSource) -> None:
    query = 'ollama_proxy_queue_depth{namespace="nobody-here"}'
    with pytest.raises(EmptyResult, match=r"nobody-here.* returned no series"):
        await prom.value(query, now=time.time())
    with pytest.raises(EmptyResult, match="returned no series"):
        await prom.per_pod(query, now=time.time())


async def test_several_series_where_one_was_expected_ask_for_a_sum(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    exporter.set_queue_depth("ollama-0", 1, namespace=exporter_namespace)
    exporter.set_queue_depth("ollama-1", 1, namespace=exporter_namespace)
    query = _queue(exporter_namespace)
    await _eventually(lambda: prom.per_pod(query, now=time.time()), lambda p: len(p.samples) == 2)
    with pytest.raises(MultipleSeries, match=r"returned 2 series .*pod='ollama-0'.*sum\("):
        await prom.value(query, now=time.time())


async def test_a_per_pod_series_without_a_pod_label_is_a_missing_label(
    prom: PrometheusSource,
) -> None:
    with pytest.raises(MissingLabel, match=r"without a pod label: \{\}"):
        await prom.per_pod("vector(1)", now=time.time())


async def test_a_pod_twice_in_a_per_pod_result_is_a_missing_label(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    ns = exporter_namespace
    exporter.set_cpu_seconds("ollama-0", 5, namespace=ns, container="ollama")
    exporter.set_cpu_seconds("ollama-0", 1, namespace=ns, container="proxy")
    query = f'container_cpu_usage_seconds_total{{namespace="{ns}"}}'
    await _scraped(prom, query, series=2)
    with pytest.raises(MissingLabel, match=r"pod 'ollama-0' twice.*sum by \(pod\)"):
        await prom.per_pod(query, now=time.time())


async def test_nan_from_promql_is_not_finite(prom: PrometheusSource) -> None:
    with pytest.raises(NotFinite, match=r"query '0/0' returned NaN"):
        await prom.value("0/0", now=time.time())  # a scalar result


async def test_an_exported_nan_is_not_finite_and_names_the_pod(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    exporter.set_queue_depth("ollama-0", 1, namespace=exporter_namespace)
    exporter.set_queue_depth("ollama-1", float("nan"), namespace=exporter_namespace)
    query = _queue(exporter_namespace)
    await _scraped(prom, query, series=2)
    with pytest.raises(NotFinite, match="returned NaN for pod 'ollama-1'"):
        await prom.per_pod(query, now=time.time())


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        pytest.param("vector(1/0)", r"\+Inf", id="positive-vector"),
        pytest.param("-1/0", "-Inf", id="negative-scalar"),
    ],
)
async def test_an_infinity_is_not_finite(prom: PrometheusSource, query: str, shown: str) -> None:
    with pytest.raises(NotFinite, match=f"returned {shown}$"):
        await prom.value(query, now=time.time())


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        pytest.param("vector(-5)", "-5", id="negative-vector"),
        pytest.param("-0.001", "-0.001", id="negative-scalar"),
        pytest.param("vector(1e13)", "1e[+]13", id="absurdly-large"),
    ],
)
async def test_a_value_no_queue_or_cpu_can_have_is_implausible(
    prom: PrometheusSource, query: str, shown: str
) -> None:
    # Issue 13, point 4: -5 for the queue took a Deployment 3 -> 2.
    with pytest.raises(ImplausibleValue, match=f"returned {shown}, "):
        await prom.value(query, now=time.time())


@pytest.mark.parametrize("value", [0.0, MAX_PLAUSIBLE])
async def test_the_plausible_range_includes_its_ends(prom: PrometheusSource, value: float) -> None:
    sample = await prom.value(f"vector({value!r})", now=time.time())
    assert sample.value == value


async def test_an_exported_negative_value_is_implausible_and_names_the_pod(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    exporter.set_queue_depth("ollama-0", 1, namespace=exporter_namespace)
    exporter.set_queue_depth("ollama-1", -5, namespace=exporter_namespace)
    query = _queue(exporter_namespace)
    await _scraped(prom, query, series=2)
    with pytest.raises(ImplausibleValue, match="for pod 'ollama-1' returned -5, "):
        await prom.per_pod(query, now=time.time())


async def test_a_query_prometheus_rejects_is_an_http_status_with_prometheus_error(
    prom: PrometheusSource,
) -> None:
    with pytest.raises(HttpStatus) as caught:
        await prom.value("sum(rate(x[1m])", now=time.time())
    message = str(caught.value)
    assert message.startswith("query 'sum(rate(x[1m])': Prometheus answered 400 Bad Request (")
    assert "bad_data: " in message
    assert "parse error" in message
    assert isinstance(caught.value.__cause__, aiohttp.ClientResponseError)
    assert caught.value.__cause__.status == 400


async def test_a_range_vector_is_a_bad_response_that_suggests_rate(
    prom: PrometheusSource,
) -> None:
    with pytest.raises(BadResponse, match=r"returned a matrix, not an instant vector.*rate"):
        await prom.value("up[1m]", now=time.time())


async def test_data_within_prometheus_lookback_is_carried_forward_stamped_fresh(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    # Why the source cannot see old data: 60 s after the last scrape, Prometheus still
    # answers with that value, stamped at the evaluation time (lookback is 5 min).
    query = f"sum({_queue(exporter_namespace)})"
    exporter.set_queue_depth("ollama-0", 3, namespace=exporter_namespace)
    await _eventually(lambda: prom.value(query, now=time.time()), lambda s: s.value == 3)
    later = time.time() + 60
    assert await prom.value(query, now=later) == Sample(3.0, round(later, 3))


async def test_data_older_than_a_bound_in_the_query_is_an_empty_result(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    # The way to bound data age with a real Prometheus: last_over_time over the bound.
    exporter.set_queue_depth("ollama-0", 3, namespace=exporter_namespace)
    query = f"sum(last_over_time({_queue(exporter_namespace)}[5s]))"
    await _eventually(lambda: prom.value(query, now=time.time()), lambda s: s.value == 3)
    with pytest.raises(EmptyResult):
        await prom.value(query, now=time.time() + 60)


async def test_data_older_than_prometheus_lookback_is_an_empty_result(
    prom: PrometheusSource, exporter: Exporter, exporter_namespace: str
) -> None:
    query = f"sum({_queue(exporter_namespace)})"
    exporter.set_queue_depth("ollama-0", 3, namespace=exporter_namespace)
    await _eventually(lambda: prom.value(query, now=time.time()), lambda s: s.value == 3)
    with pytest.raises(EmptyResult):
        await prom.value(query, now=time.time() + 600)


async def test_a_closed_port_is_a_connection_failure(
    http_session: aiohttp.ClientSession,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = _source(http_session, f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectionFailed, match=f"query 'up': http://127.0.0.1:{port}") as caught:
        await source.value("up", now=time.time())
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)


# --- against a fake Prometheus ---------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def _fake(handler: Handler) -> AsyncIterator[str]:
    """A server on 127.0.0.1 answering ``/api/v1/query`` with ``handler``; its URL."""
    app = web.Application()
    app.router.add_get("/api/v1/query", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


def _answer(body: Any, status: int = 200) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, content_type="application/json")

    return handle


def _vector(*series: tuple[dict[str, str], float, Any]) -> dict[str, Any]:
    result = [{"metric": m, "value": [t, v]} for m, t, v in series]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


async def _outcome(
    session: aiohttp.ClientSession, handler: Handler, *, per_pod: bool = False, **kw: float
) -> Sample | PodSamples:
    async with _fake(handler) as url:
        source = _source(session, url, **kw)
        if per_pod:
            return await source.per_pod("q", now=1000.0)
        return await source.value("q", now=1000.0)


async def test_the_query_is_sent_with_now_and_the_timeout_under_the_base_path(
    http_session: aiohttp.ClientSession,
) -> None:
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.query))
        return web.json_response(_vector(({}, 1700000000.5, "1.5")))

    app = web.Application()
    app.router.add_get("/prom/api/v1/query", handle)
    async with TestServer(app, host="127.0.0.1") as server:
        source = _source(http_session, str(server.make_url("/prom/")), timeout=0.5)
        sample = await source.value('sum(x{a="b"}) + 1', now=1700000000.5)
    assert sample == Sample(1.5, 1700000000.5)
    assert seen == [{"query": 'sum(x{a="b"}) + 1', "time": "1700000000.500", "timeout": "0.5"}]


async def test_a_503_is_an_http_status_with_prometheus_error(
    http_session: aiohttp.ClientSession,
) -> None:
    body = {"status": "error", "errorType": "timeout", "error": "query timed out"}
    with pytest.raises(HttpStatus) as caught:
        await _outcome(http_session, _answer(body, status=503))
    assert str(caught.value) == (
        "query 'q': Prometheus answered 503 Service Unavailable (timeout: query timed out)"
    )
    assert isinstance(caught.value.__cause__, aiohttp.ClientResponseError)


async def test_a_502_from_a_proxy_without_json_is_an_http_status(
    http_session: aiohttp.ClientSession,
) -> None:
    with pytest.raises(HttpStatus, match=r"^query 'q': Prometheus answered 502 Bad Gateway$"):
        await _outcome(http_session, _answer("<html>bad gateway</html>", status=502))


async def test_an_answer_slower_than_the_timeout_is_a_query_timeout(
    http_session: aiohttp.ClientSession,
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response(_vector(({}, 1000.0, "1")))

    started = time.monotonic()
    try:
        with pytest.raises(QueryTimeout, match=r"^query 'q': no answer within 0.2 s$") as caught:
            await _outcome(http_session, slow, timeout=0.2)
    finally:
        release.set()
    assert time.monotonic() - started < 2.0
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_an_error_status_in_a_200_is_a_bad_response(
    http_session: aiohttp.ClientSession,
) -> None:
    body = {"status": "error", "errorType": "internal", "error": "oops"}
    with pytest.raises(BadResponse, match=r"status 'error' in a 200 answer \(internal: oops\)"):
        await _outcome(http_session, _answer(body))


async def test_a_body_that_is_not_json_is_a_bad_response(
    http_session: aiohttp.ClientSession,
) -> None:
    with pytest.raises(BadResponse, match="not a Prometheus API answer: b'<html>") as caught:
        await _outcome(http_session, _answer("<html>login</html>"))
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


async def test_a_non_numeric_value_is_a_bad_response(
    http_session: aiohttp.ClientSession,
) -> None:
    with pytest.raises(BadResponse, match="unexpected result shape") as caught:
        await _outcome(http_session, _answer(_vector(({}, 1000.0, "three"))))
    assert isinstance(caught.value.__cause__, ValueError)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="a-list"),
        pytest.param({"status": "success"}, id="no-data"),
        pytest.param({"status": "success", "data": {"result": []}}, id="no-result-type"),
        pytest.param(
            {"status": "success", "data": {"resultType": "vector", "result": {}}}, id="not-a-list"
        ),
        pytest.param(
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
            id="no-value",
        ),
        pytest.param(_vector(({}, 1000.0, 3)), id="value-not-a-string"),
        pytest.param(
            {"status": "success", "data": {"resultType": "scalar", "result": [1000.0]}},
            id="short-scalar",
        ),
    ],
)
async def test_an_unexpected_shape_is_a_bad_response(
    http_session: aiohttp.ClientSession, body: Any
) -> None:
    with pytest.raises(BadResponse, match=r"^query 'q': "):
        await _outcome(http_session, _answer(body))


async def test_a_per_pod_answer_of_the_wrong_shape_is_a_bad_response(
    http_session: aiohttp.ClientSession,
) -> None:
    body = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": []}]}}
    with pytest.raises(BadResponse, match=r"^query 'q': unexpected result shape"):
        await _outcome(http_session, _answer(body), per_pod=True)


async def test_a_sample_older_than_the_staleness_bound_is_stale(
    http_session: aiohttp.ClientSession,
) -> None:
    handler = _answer(_vector(({}, 1000.0 - 30, "1")))
    with pytest.raises(StaleSample, match=r"stamped 30.0 s before the evaluation time.*is 5 s"):
        await _outcome(http_session, handler, staleness=5.0)


async def test_a_pod_sample_older_than_the_staleness_bound_is_stale_and_names_the_pod(
    http_session: aiohttp.ClientSession,
) -> None:
    handler = _answer(_vector(({"pod": "a"}, 1000.0, "1"), ({"pod": "b"}, 990.0, "1")))
    with pytest.raises(StaleSample, match=r"for pod 'b' stamped 10.0 s before"):
        await _outcome(http_session, handler, per_pod=True, staleness=5.0)


async def test_a_sample_within_the_staleness_bound_is_accepted(
    http_session: aiohttp.ClientSession,
) -> None:
    handler = _answer(_vector(({"pod": "a"}, 996.0, "1"), ({"pod": "b"}, 1004.0, "2")))
    pods = await _outcome(http_session, handler, per_pod=True, staleness=5.0)
    assert pods == PodSamples({"a": Sample(1.0, 996.0), "b": Sample(2.0, 1004.0)})


async def test_a_sample_stamped_in_the_future_is_stale_and_blames_the_clocks(
    http_session: aiohttp.ClientSession,
) -> None:
    handler = _answer(_vector(({}, 1000.0 + 60, "1")))
    with pytest.raises(StaleSample, match=r"stamped 60.0 s after \(check the clocks\)"):
        await _outcome(http_session, handler, staleness=5.0)


async def test_a_server_that_hangs_up_is_a_connection_failure(
    http_session: aiohttp.ClientSession,
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        source = _source(http_session, f"http://127.0.0.1:{port}")
        with pytest.raises(ConnectionFailed, match=r"^query 'up': ") as caught:
            await source.value("up", now=time.time())
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectionError)


async def test_a_long_query_is_shortened_in_messages(
    http_session: aiohttp.ClientSession,
) -> None:
    query = "sum(" + " + ".join(f"metric_{i}" for i in range(100)) + ")"
    async with _fake(_answer(_vector())) as url:
        with pytest.raises(EmptyResult) as caught:
            await _source(http_session, url).value(query, now=1000.0)
    shown = str(caught.value).removeprefix("query '").split("'")[0]
    assert len(shown) == QUERY_SHOWN
    assert shown.endswith("…")
    assert query.startswith(shown[:-1])


@pytest.mark.parametrize(
    ("url", "timeout", "staleness", "problem"),
    [
        pytest.param("prometheus:9090", 1.0, 5.0, "base_url = 'prometheus:9090'", id="no-scheme"),
        pytest.param("http://p:9090", 0.0, 5.0, "timeout = 0.0", id="zero-timeout"),
        pytest.param("http://p:9090", 1.0, -1.0, "staleness = -1.0", id="negative-staleness"),
    ],
)
async def test_an_unusable_setting_is_a_config_error_naming_it(
    http_session: aiohttp.ClientSession, url: str, timeout: float, staleness: float, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        PrometheusSource(http_session, url, timeout=timeout, staleness=staleness)
