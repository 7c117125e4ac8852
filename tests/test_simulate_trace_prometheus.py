"""A trace from a request rate in a real Prometheus, filled with backfilled history.

The history is at a fixed date (2024-05-01), so every query result, and with the
fixed seed every trace, is the same on every run.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_api_client.exceptions import PrometheusApiClientException

from scaler.simulate.sampling import trace_from_rates
from scaler.simulate.trace_prometheus import load_trace_prometheus, parse_time
from scaler.simulate.types import SimulationError, TraceError
from tests.support.exporter import running_exporter
from tests.support.prometheus_server import (
    PrometheusServer,
    prometheus_server,
    scrape_job,
    wait_for,
)

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
"""Start of the recorded hour."""
SCRAPE = 15
MINUTE = timedelta(minutes=1)


def _gauge_rate(offset: int) -> str:
    """``test_request_rate`` at ``T0 + offset`` s: 0.1/s, a 1/s burst from 8:20 to 8:40,
    NaN (a gap) for 8:50-8:51, and nothing after 9:00."""
    if 20 * 60 <= offset < 40 * 60:
        return "1"
    if 50 * 60 <= offset < 52 * 60:
        return "NaN"
    return "0.1"


def _history() -> str:
    start = int(T0.timestamp())
    offsets = range(0, 3600, SCRAPE)
    lines = ["# TYPE test_request_rate gauge"]
    lines += [f"test_request_rate {_gauge_rate(o)} {start + o}" for o in offsets]
    lines.append("# TYPE test_rate_by_instance gauge")
    for instance in ("a", "b"):
        lines += [
            f'test_rate_by_instance{{instance="{instance}"}} 0.5 {start + o}' for o in offsets
        ]
    lines.append("# TYPE test_requests counter")  # 30 requests every 15 s: 2/s
    lines += [f"test_requests_total {2 * o} {start + o}" for o in offsets]
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with prometheus_server(tmp_path_factory.mktemp("prometheus"), openmetrics=_history()) as p:
        yield p


def test_a_gauge_rate_becomes_poisson_arrivals_per_step(prometheus: PrometheusServer) -> None:
    end = T0 + 70 * MINUTE
    trace = load_trace_prometheus(
        prometheus.url, "test_request_rate", start=T0, end=end, step=60, seed=3
    )
    # Steps 8:00-8:19 at 0.1/s, 8:20-8:39 at 1/s, 8:40-8:49 at 0.1/s, 8:50-8:51 NaN,
    # 8:52-9:04 at 0.1/s (the last sample, 8:59:45, stays current for 5 minutes),
    # 9:05-9:10 missing.
    rates = [0.1] * 20 + [1.0] * 20 + [0.1] * 10 + [0.0] * 2 + [0.1] * 13 + [0.0] * 6
    name = "prometheus: test_request_rate"
    assert trace == trace_from_rates(name, rates, step=60, seed=3)
    assert trace.duration == 71 * 60
    # Integral of the rate: 60 * (43 * 0.1 + 20 * 1) = 1,458 requests (sd 38).
    assert 1300 <= len(trace.arrivals) <= 1620
    assert not any(50 * 60 <= a < 52 * 60 or a >= 65 * 60 for a in trace.arrivals)


def test_a_rate_of_a_counter_works_as_the_docs_suggest(prometheus: PrometheusServer) -> None:
    start, end = T0 + 5 * MINUTE, T0 + 35 * MINUTE
    query = "sum(rate(test_requests_total[1m]))"
    trace = load_trace_prometheus(prometheus.url, query, start=start, end=end, step=30, seed=8)
    assert trace == trace_from_rates(f"prometheus: {query}", [2.0] * 61, step=30, seed=8)


def test_several_series_ask_for_sum(prometheus: PrometheusServer) -> None:
    with pytest.raises(TraceError) as error:
        load_trace_prometheus(
            prometheus.url, "test_rate_by_instance", start=T0, end=T0 + MINUTE, step=15, seed=1
        )
    assert str(error.value) == (
        "query 'test_rate_by_instance' from 2024-05-01T08:00:00+00:00 to "
        "2024-05-01T08:01:00+00:00 (step 15 s) returned 2 series "
        '({__name__="test_rate_by_instance",instance="a"}, '
        '{__name__="test_rate_by_instance",instance="b"}); it must return one: wrap it in sum(...)'
    )


def test_an_empty_result_names_the_query_and_range(prometheus: PrometheusServer) -> None:
    with pytest.raises(TraceError) as error:
        load_trace_prometheus(
            prometheus.url, "no_such_metric", start=T0, end=T0 + MINUTE, step=15, seed=1
        )
    assert str(error.value) == (
        "Prometheus returned no data for query 'no_such_metric' from "
        "2024-05-01T08:00:00+00:00 to 2024-05-01T08:01:00+00:00 (step 15 s): check the "
        "metric name and labels, and that the range holds samples"
    )


def test_a_negative_rate_is_rejected(prometheus: PrometheusServer) -> None:
    with pytest.raises(TraceError, match=r"value '-0.1' at 2024-05-01T08:00:00\+00:00 is not"):
        load_trace_prometheus(
            prometheus.url, "-test_request_rate", start=T0, end=T0 + MINUTE, step=15, seed=1
        )


def test_a_query_prometheus_rejects_is_a_trace_error(prometheus: PrometheusServer) -> None:
    with pytest.raises(TraceError, match=r"rejected query 'sum\(' from .*HTTP Status Code 400"):
        load_trace_prometheus(prometheus.url, "sum(", start=T0, end=T0 + MINUTE, step=15, seed=1)


def test_a_refused_connection_is_a_trace_error_chained_to_the_cause() -> None:
    with socket.socket() as taken:  # bound, not listening: connections are refused
        taken.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(TraceError) as error:
            load_trace_prometheus(url, "up", start=T0, end=T0 + MINUTE, step=15, seed=1)
    assert str(error.value).startswith("cannot get query 'up' from ")
    assert f"from Prometheus at {url}: " in str(error.value)
    assert isinstance(error.value.__cause__, OSError)
    assert not isinstance(error.value.__cause__, PrometheusApiClientException)


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [
        (
            T0,
            T0,
            15.0,
            "start 2024-05-01T08:00:00+00:00 is not before end 2024-05-01T08:00:00+00:00",
        ),
        (T0, T0 + MINUTE, 0.0, "step 0.0 must be a positive number of seconds"),
        (T0, T0 + MINUTE, float("nan"), "step nan must be a positive number of seconds"),
    ],
)
def test_a_bad_range_or_step_is_a_simulation_error(
    start: datetime, end: datetime, step: float, message: str
) -> None:
    with pytest.raises(SimulationError) as error:
        load_trace_prometheus("http://127.0.0.1:1", "up", start=start, end=end, step=step, seed=1)
    assert str(error.value) == message


NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-6h", NOW - timedelta(hours=6)),
        ("-30m", NOW - timedelta(minutes=30)),
        ("now - 90s", NOW - timedelta(seconds=90)),
        ("now+1d", NOW + timedelta(days=1)),
        ("-1.5h", NOW - timedelta(minutes=90)),
        ("1714554000", datetime(2024, 5, 1, 9, 0, tzinfo=UTC)),
        ("1714554000.5", datetime(2024, 5, 1, 9, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01T09:00:00Z", datetime(2024, 5, 1, 9, 0, tzinfo=UTC)),
        (
            "2024-05-01T11:00:00+02:00",
            datetime(2024, 5, 1, 11, 0, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2024-05-01 09:00", datetime(2024, 5, 1, 9, 0, tzinfo=UTC)),
    ],
)
def test_parse_time_accepts_absolute_and_relative_forms(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "now-6x", "-h", "now-", "2024-13-01", "6h"])
def test_parse_time_names_a_bad_value(text: str) -> None:
    with pytest.raises(SimulationError) as error:
        parse_time(text, now=NOW)
    assert str(error.value) == (
        f"{text!r} is not a time: use RFC 3339 (2024-05-01T09:00:00Z), unix seconds, 'now', "
        "or a time relative to now such as now-6h or -30m (units s, m, h, d)"
    )


def test_the_helper_scrapes_exporters_and_stops_cleanly(tmp_path: Path) -> None:
    with running_exporter() as exporter:
        exporter.set_queue_depth("demo-0", 3)
        job = scrape_job("demo", exporter.target)
        with prometheus_server(tmp_path, scrape_configs=[job], scrape_interval=0.2) as server:
            assert server.url.startswith("http://127.0.0.1:")
            result = wait_for(server, 'ollama_proxy_queue_depth{job="demo"}', timeout=20)
            assert result[0]["value"][1] == "3"
        assert server.process.returncode is not None


def test_scaler_simulate_replays_prometheus_history(
    prometheus: PrometheusServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from scaler.cli import main

    argv = [
        "simulate",
        "--from-prometheus",
        prometheus.url,
        "--query",
        "test_request_rate",
        "--start",
        T0.isoformat(),
        "--end",
        (T0 + 60 * MINUTE).isoformat(),
        "--step",
        "60",
        "--seed",
        "3",
        "--hardware",
        "gpu",
        "--json",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    import json

    figures = json.loads(out)
    expected = load_trace_prometheus(
        prometheus.url, "test_request_rate", start=T0, end=T0 + 60 * MINUTE, step=60, seed=3
    )
    assert figures["duration_seconds"] == expected.duration == 3660.0
    assert figures["policies"]["queue"]["requests"] == len(expected.arrivals)
    # On a GPU two replicas carry the 0.1/s base; the 1/s burst from 8:20 (1200 s)
    # outgrows them: the first 60 s window averaging above that starts within a minute.
    assert 1140.0 <= figures["burst_at_seconds"] <= 1200.0
