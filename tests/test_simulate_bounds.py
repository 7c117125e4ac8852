"""``scaler simulate`` refuses absurd input up front (issue 13, points 7 and 8): every
numeric flag, trace and Prometheus answer beyond a documented bound is a one-line
error with exit code 2, before the simulation starts and before anything is drawn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from scaler.cli import main
from scaler.simulate import command, trace_csv_parse
from scaler.simulate.bounds import MAX_DURATION, MAX_REQUESTS, MAX_ROWS
from scaler.simulate.scenarios import SCENARIOS, scenario_rates
from tests.support.threaded_server import serve_in_thread


@pytest.fixture(autouse=True)
def no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the simulation starts: every refusal must come first."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the simulation ran")

    monkeypatch.setattr(command, "simulate", refuse)


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line a refused run prints; it must exit 2 with nothing on stdout."""
    code = main(["simulate", *argv])
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), err
    assert err.startswith("scaler: ") and err.count("\n") == 1, err
    return err


# -- flags -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cpu-target", "inf"], "--cpu-target inf is out of range (1 to 1,000)"),
        (["--cpu-target", "nan"], "--cpu-target nan is out of range (1 to 1,000)"),
        (["--cpu-target", "1e6"], "--cpu-target 1e+06 is out of range (1 to 1,000)"),
        (["--cold-start", "inf"], "--cold-start inf is out of range (0 to 2,592,000)"),
        (["--cold-start", "-1"], "--cold-start -1 is out of range (0 to 2,592,000)"),
        (["--cpu-hpa-lag", "1e300"], "--cpu-hpa-lag 1e+300 is out of range (0 to 2,592,000)"),
        (["--step", "inf"], "--step inf is out of range (1 to 2,592,000)"),
        (["--step", "nan"], "--step nan is out of range (1 to 2,592,000)"),
        (
            ["--prompt-tokens-per-second", "inf"],
            "--prompt-tokens-per-second inf is out of range (1e-09 to 1,000,000,000)",
        ),
        (
            ["--completion-tokens-per-second", "nan"],
            "--completion-tokens-per-second nan is out of range (1e-09 to 1,000,000,000)",
        ),
        (["--parallel", "100000"], "--parallel 100000 is out of range (1 to 1,024)"),
        (["--capacity", "100000000"], "--capacity 100000000 is out of range (1 to 10,000)"),
        (["--max-queue", "9" * 40], f"--max-queue {'9' * 12}… is out of range (0 to 5,000,000)"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_non_finite_or_absurd_flag_is_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert _refused(capsys, "--policy", "static:1", *argv) == f"scaler: {message}\n"


def test_a_cpu_target_of_inf_no_longer_reaches_the_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The probe's repro: ``int(inf)`` in the CPU HPA's policy was a traceback."""
    assert "--cpu-target inf" in _refused(capsys, "--cpu-target", "inf")


@pytest.mark.parametrize("name", ["static:100000000", "static:10001"])
def test_more_replicas_than_the_bound_are_refused(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert _refused(capsys, "--policy", name) == (
        f"scaler: policy {name!r}: {int(name[7:]):,} replicas, more than the 10,000 "
        "the simulator runs\n"
    )


def test_a_config_whose_max_replicas_is_beyond_the_bound_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The HPA allows any int32 (``config_bounds``); the simulator models each pod."""
    default = Path(__file__).parents[1] / "scaler" / "default_config.yaml"
    text = default.read_text()
    assert "maxReplicas: 10\n" in text
    config = tmp_path / "huge.yaml"
    config.write_text(text.replace("maxReplicas: 10\n", "maxReplicas: 20000\n", 1))
    err = _refused(capsys, "--config", str(config), "--policy", "config")
    assert err == (
        "scaler: policy 'huge': 20,000 replicas, more than the 10,000 the simulator runs\n"
    )


# -- CSV traces --------------------------------------------------------------------------
def _trace(tmp_path: Path, text: str) -> str:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param(
            "time,rate\n0,1e308\n",
            "offers 1e+308 requests (the largest: rate 1e+308 at 0 s), more than the "
            "5,000,000 the simulator runs",
            id="rate-1e308",
        ),
        pytest.param(
            "time,rate\n0,0\n1,1e308\n2,1e308\n",
            "offers inf requests (the largest: rate 1e+308 at 1 s), more than the "
            "5,000,000 the simulator runs",
            id="rate-overflows-to-inf",
        ),
        pytest.param(
            "time,arrivals\n0,1\n60,5000001\n",
            "offers 5e+06 requests (the largest: arrivals 5,000,001 at 60 s), more than the "
            "5,000,000 the simulator runs",
            id="arrivals",
        ),
        pytest.param(
            "time,arrivals\n0,1\n1e18,1\n",
            "covers 2e+18 s, more than the 2,592,000 s (30 days) the simulator runs",
            id="gap-1e18",
        ),
        pytest.param(
            "time,arrivals\n0,1\n1e9,1\n",
            "covers 2,000,000,000 s, more than the 2,592,000 s (30 days) the simulator runs",
            id="gap-1e9",
        ),
        pytest.param(
            "time,arrivals\n2592000,1\n",
            "covers 2,592,001 s, more than the 2,592,000 s (30 days) the simulator runs",
            id="one-second-too-long",
        ),
    ],
)
def test_a_trace_beyond_the_bounds_is_refused_before_drawing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: str, message: str
) -> None:
    path = _trace(tmp_path, rows)
    assert _refused(capsys, "--trace", path) == f"scaler: {path}: {message}\n"


@pytest.mark.parametrize("comment", ["", "# a comment sends it down the checked path\n"])
def test_more_rows_than_the_bound_are_refused_while_reading(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    comment: str,
) -> None:
    """Rows a millisecond apart fit in 30 days by the billion: bounded by count too
    (lowered here from its 2,592,000 so the file stays small)."""
    assert MAX_ROWS == MAX_DURATION
    monkeypatch.setattr(trace_csv_parse, "MAX_ROWS", 1000)
    rows = "".join(f"{i / 1000},0\n" for i in range(1001))
    path = _trace(tmp_path, "time,arrivals\n" + comment + rows)
    assert _refused(capsys, "--trace", path) == (
        f"scaler: {path}: more than 1,000 data rows, the most the simulator reads\n"
    )
    path = _trace(tmp_path, "time,arrivals\n" + comment + rows[: rows.rindex("1.0,")])
    with pytest.raises(AssertionError, match="the simulation ran"):
        main(["simulate", "--trace", path])


def test_a_trace_at_the_bounds_is_accepted(tmp_path: Path) -> None:
    from scaler.simulate.trace_csv import load_trace_csv

    last = MAX_DURATION - 1  # the last row is as long as the one before: 1 s
    path = _trace(tmp_path, f"time,arrivals\n0,3\n{last - 1:.0f},0\n{last:.0f},2\n")
    trace = load_trace_csv(path, seed=1)
    assert trace.duration == MAX_DURATION and len(trace.arrivals) == 5


def test_every_built_in_scenario_is_well_inside_the_bounds() -> None:
    for name in SCENARIOS:
        rates = scenario_rates(name)
        assert len(rates) <= MAX_DURATION / 30
        assert sum(rates) <= MAX_REQUESTS / 100


# -- Prometheus answers ------------------------------------------------------------------
@dataclass
class _FakePrometheus:
    """A fake Prometheus that answers every query with ``body``; ``asked`` counts them."""

    url: str = ""
    body: bytes = b"{}"
    asked: int = 0

    def app(self) -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            self.asked += 1
            return web.Response(body=self.body, content_type="application/json")

        app = web.Application()
        app.router.add_route("*", "/{path:.*}", answer)
        return app


@pytest.fixture
def fake() -> Iterator[_FakePrometheus]:
    prometheus = _FakePrometheus()
    with serve_in_thread(prometheus.app()) as url:
        prometheus.url = url
        yield prometheus


START = "2024-05-01T08:00:00Z"
T0 = 1714550400


def _from(server: _FakePrometheus, *extra: str) -> list[str]:
    argv = ["--from-prometheus", server.url, "--query", "rate_q", "--step", "60"]
    return [*argv, "--start", START, "--end", "2024-05-01T09:00:00Z", *extra]


def _matrix(*samples: list[object]) -> bytes:
    result = [{"metric": {}, "values": list(samples)}]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})\
        .encode()  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"[1, 2, 3]", "with JSON that is not a query result", id="json-list"),
        pytest.param(b'"text"', "with JSON that is not a query result", id="json-string"),
        pytest.param(b'{"data": 5}', "with JSON that is not a query result", id="data-not-a-dict"),
        pytest.param(b'{"data": {"result": {"a": 1}}}', "returned dict", id="result-not-a-list"),
        pytest.param(
            _matrix([T0, "1e300"]),
            "offers 6e+301 requests (the largest: rate 1e+300 at 0 s), more than the "
            "5,000,000 the simulator runs",
            id="value-1e300",
        ),
        pytest.param(
            _matrix([1e20, "1"]), "sample at 1e+20 lies outside the range asked", id="ts-1e20"
        ),
        pytest.param(_matrix(["nan", "1"]), "malformed sample ['nan', '1']", id="ts-nan"),
        pytest.param(_matrix({"0": 1}), "malformed sample {'0': 1}", id="sample-a-dict"),
    ],
)
def test_an_unexpected_prometheus_answer_is_a_clear_error(
    fake: _FakePrometheus, capsys: pytest.CaptureFixture[str], body: bytes, message: str
) -> None:
    fake.body = body
    err = _refused(capsys, *_from(fake))
    assert message in err


def test_a_huge_prometheus_answer_is_quoted_by_a_short_prefix(
    fake: _FakePrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.body = _matrix([T0, "x" * 1_000_000])
    err = _refused(capsys, *_from(fake))
    assert "malformed sample" in err and len(err) < 600


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("now-99999999999d", "'now-99999999999d' is too far from now"),
        ("-99999999999999999999h", "'-99999999999999999999h' is too far from now"),
        ("0", "covers 1,714,521,600 s, more than the 2,592,000 s (30 days) the simulator runs"),
    ],
)
def test_a_range_beyond_the_bounds_is_refused_before_querying(
    fake: _FakePrometheus, capsys: pytest.CaptureFixture[str], start: str, message: str
) -> None:
    argv = ["--from-prometheus", fake.url, "--query", "q", f"--start={start}"]
    argv += ["--end", "2024-05-01"]
    assert message in _refused(capsys, *argv)
    assert fake.asked == 0
