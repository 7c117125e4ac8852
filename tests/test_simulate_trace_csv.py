"""Loading a CSV trace: both forms, token columns, every error message, a 7-day file.

Each test writes ``trace.csv`` in its own directory and loads it by that relative
name, so messages read as in the docs: ``trace.csv:7: column 'arrivals': ...``.
"""

from __future__ import annotations

import time
from pathlib import Path
from statistics import fmean, median

import pytest

from scaler.simulate.trace_csv import COLUMNS, load_trace_csv
from scaler.simulate.types import Trace, TraceError


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def load(text: str, *, seed: int = 1, name: str = "trace.csv") -> Trace:
    Path(name).write_text(text, encoding="utf-8")
    return load_trace_csv(name, seed=seed)


def test_arrivals_are_placed_inside_their_rows() -> None:
    trace = load("time,arrivals\n0,3\n10,0\n20,2\n")
    assert trace.name == "trace.csv"
    assert trace.duration == 30  # the last row is as long as the one before it
    assert trace.burst_at is None
    arrivals = list(trace.arrivals)
    assert len(arrivals) == 5
    assert arrivals == sorted(arrivals)
    assert all(0 <= a < 10 for a in arrivals[:3])
    assert all(20 <= a < 30 for a in arrivals[3:])


def test_times_are_taken_as_they_are_and_a_single_row_lasts_one_second() -> None:
    trace = load("time,arrivals\n300,4\n")
    assert trace.duration == 301
    assert all(300 <= a < 301 for a in trace.arrivals)
    assert len(trace.arrivals) == 4


def test_rate_rows_get_poisson_arrivals_over_their_length() -> None:
    trace = load("time,rate\n0,0\n60,2\n120,0.0\n")
    assert trace.duration == 180
    assert all(60 <= a < 120 for a in trace.arrivals)
    assert 80 <= len(trace.arrivals) <= 160  # Poisson(120), fixed seed


def test_the_same_file_and_seed_give_the_same_trace_and_seeds_differ() -> None:
    text = "time,rate\n0,1\n100,1\n"
    assert load(text, seed=5) == load(text, seed=5)
    assert load(text, seed=5).arrivals != load(text, seed=6).arrivals


def test_token_columns_set_the_mean_per_row() -> None:
    trace = load("time,arrivals,prompt_tokens,completion_tokens\n0,3000,1000,50\n1,3000,100,400\n")
    prompt, completion = list(trace.prompt_tokens), list(trace.completion_tokens)
    # A mean of 1,000 with sigma 1: 3% clip at 4,096, which costs ~4% of the mean.
    assert 900 <= fmean(prompt[:3000]) <= 1020
    assert 92 <= fmean(prompt[3000:]) <= 108
    assert 46 <= fmean(completion[:3000]) <= 54
    assert 370 <= fmean(completion[3000:]) <= 430


def test_without_token_columns_the_scenario_defaults_apply() -> None:
    trace = load("time,arrivals\n0,4000\n")
    assert 235 <= median(trace.prompt_tokens) <= 265
    assert 188 <= median(trace.completion_tokens) <= 212


def test_a_token_mean_of_zero_gives_one_token() -> None:
    trace = load("time,arrivals,prompt_tokens\n0,3,0\n")
    assert list(trace.prompt_tokens) == [1, 1, 1]


def test_comments_blank_lines_spaces_bom_and_crlf_are_accepted() -> None:
    text = "\ufeff# recorded 2024-05-01\r\n\r\ntime, arrivals\r\n# quiet\r\n0, 2\r\n  \r\n5 ,1\r\n"
    trace = load(text)
    assert len(trace.arrivals) == 3
    assert trace.duration == 10


def test_comments_do_not_change_the_trace() -> None:
    rows = "".join(f"{t},{t % 3}\n" for t in range(200))
    plain = load("time,arrivals\n" + rows, seed=9)
    commented = load("# note\ntime,arrivals\n" + rows + "# the end\n", seed=9)
    assert plain == commented


def test_columns_may_come_in_any_order() -> None:
    trace = load("completion_tokens,rate,time\n100,0,0\n100,1,10\n100,0,1000\n")
    assert all(10 <= a < 1000 for a in trace.arrivals)
    assert trace.duration == 1990


COLUMN_LIST = ", ".join(COLUMNS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "", "trace.csv: empty file: expected a header row such as 'time,arrivals'", id="empty"
        ),
        pytest.param(
            "# only a comment\n\n",
            "trace.csv: empty file: expected a header row such as 'time,arrivals'",
            id="no-header",
        ),
        pytest.param(
            "time,arrivals\n", "trace.csv: no data rows after the header (line 1)", id="no-rows"
        ),
        pytest.param(
            "arrivals\n1\n", "trace.csv:1: missing column 'time' (header: arrivals)", id="no-time"
        ),
        pytest.param(
            "time,arrivals,rate\n0,1,1\n",
            "trace.csv:1: the header has both of 'arrivals' and 'rate'; give exactly one",
            id="both",
        ),
        pytest.param(
            "time,prompt_tokens\n0,1\n",
            "trace.csv:1: the header has neither of 'arrivals' and 'rate'; give exactly one",
            id="neither",
        ),
        pytest.param(
            "time,arrivals,foo,Rate\n",
            f"trace.csv:1: unknown column 'foo', 'Rate'; valid columns: {COLUMN_LIST}",
            id="unknown",
        ),
        pytest.param(
            "time,arrivals,time\n",
            "trace.csv:1: column 'time' appears more than once",
            id="duplicate",
        ),
        pytest.param(
            "# recorded\ntime,arrivals\n0,1\n1,2\n\n# lunch\n2,abc\n",
            "trace.csv:7: column 'arrivals': 'abc' is not a number",
            id="not-a-number",
        ),
        pytest.param(
            "time,rate\n0,\n", "trace.csv:2: column 'rate': '' is not a number", id="empty-value"
        ),
        pytest.param(
            "time,rate\nsoon,1\n",
            "trace.csv:2: column 'time': 'soon' is not a number",
            id="time-not-a-number",
        ),
        pytest.param(
            "time,rate\n0,-0.5\n",
            "trace.csv:2: column 'rate': '-0.5' is negative",
            id="negative-rate",
        ),
        pytest.param(
            "time,rate\n-1,1\n", "trace.csv:2: column 'time': '-1' is negative", id="negative-time"
        ),
        pytest.param(
            "time,arrivals,completion_tokens\n0,1,-3\n",
            "trace.csv:2: column 'completion_tokens': '-3' is negative",
            id="negative-tokens",
        ),
        pytest.param(
            "time,arrivals\n0,2.5\n",
            "trace.csv:2: column 'arrivals': '2.5' is not a whole number of requests",
            id="fractional-arrivals",
        ),
        pytest.param(
            "time,arrivals\n0,1\n10,1\n10,2\n",
            "trace.csv:4: column 'time': '10' is not after the previous row's time 10",
            id="repeated-time",
        ),
        pytest.param(
            "time,arrivals\n0,1\n10.5,1\n5,2\n",
            "trace.csv:4: column 'time': '5' is not after the previous row's time 10.5",
            id="decreasing-time",
        ),
        pytest.param(
            "time,arrivals\n0,1,2\n",
            "trace.csv:2: 3 fields, expected 2 (time,arrivals)",
            id="too-many-fields",
        ),
        pytest.param(
            "time,arrivals,prompt_tokens\n0,1\n",
            "trace.csv:2: 2 fields, expected 3 (time,arrivals,prompt_tokens)",
            id="too-few-fields",
        ),
        pytest.param(
            "time,rate\n0,nan\n",
            "trace.csv:2: column 'rate': 'nan' is not a finite number",
            id="nan",
        ),
        pytest.param(
            "time,rate\ninf,1\n",
            "trace.csv:2: column 'time': 'inf' is not a finite number",
            id="inf-time",
        ),
        pytest.param(
            "time,arrivals,prompt_tokens\n0,1,-inf\n",
            "trace.csv:2: column 'prompt_tokens': '-inf' is not a finite number",
            id="inf-tokens",
        ),
    ],
)
def test_errors_name_the_file_line_column_and_value(text: str, message: str) -> None:
    with pytest.raises(TraceError) as error:
        load(text)
    assert str(error.value) == message


def test_an_error_deep_in_a_large_file_names_its_line() -> None:
    rows = [f"{t},1\n" for t in range(200_000)]
    rows[150_000] = "150000,1.5\n"
    with pytest.raises(TraceError) as error:
        load("time,arrivals\n" + "".join(rows))
    assert str(error.value) == (
        "trace.csv:150002: column 'arrivals': '1.5' is not a whole number of requests"
    )


def test_a_missing_file_is_a_trace_error_chained_to_the_os_error() -> None:
    with pytest.raises(TraceError) as error:
        load_trace_csv("missing.csv", seed=1)
    assert str(error.value) == "missing.csv: cannot read: No such file or directory"
    assert isinstance(error.value.__cause__, FileNotFoundError)


def test_a_file_that_is_not_utf8_is_a_trace_error() -> None:
    Path("trace.csv").write_bytes(b"time,arrivals\n0,\xff\n")
    with pytest.raises(TraceError) as error:
        load_trace_csv("trace.csv", seed=1)
    assert str(error.value) == "trace.csv: not UTF-8 text (invalid start byte)"
    assert isinstance(error.value.__cause__, UnicodeDecodeError)


def test_a_csv_syntax_error_is_a_trace_error_with_its_line() -> None:
    with pytest.raises(TraceError) as error:
        load("time,arrivals\n0,1\n1," + "1" * 200_000 + "\n")
    assert str(error.value) == "trace.csv:3: field larger than field limit (131072)"


def test_a_seven_day_trace_at_one_second_resolution_loads_quickly() -> None:
    seconds = 7 * 86_400
    pattern = ("0", "1", "1", "2")  # ~1 request/s
    Path("week.csv").write_text(
        "time,arrivals\n" + "".join(f"{t},{pattern[t % 4]}\n" for t in range(seconds)),
        encoding="utf-8",
    )
    started = time.perf_counter()
    trace = load_trace_csv("week.csv", seed=1)
    elapsed = time.perf_counter() - started
    assert trace.duration == seconds
    assert len(trace.arrivals) == seconds
    assert trace.arrivals[-1] < seconds
    # ~1 s on a laptop; the bound only catches an accidental per-row slowdown.
    assert elapsed < 15
