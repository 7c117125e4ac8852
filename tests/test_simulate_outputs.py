"""The simulator's files (timeline CSV, PNG plot), their atomic writes, and the progress
bar. Time is a fake clock: no test sleeps."""

from __future__ import annotations

import csv
import io
import os
from array import array
from pathlib import Path

import pytest
from PIL import Image

from scaler.simulate.atomic import atomic_binary, atomic_text
from scaler.simulate.plot import arrivals_per_minute, bucket_max, bucket_seconds, write_plot
from scaler.simulate.progress import Progress, render_line
from scaler.simulate.timeline_csv import write_timeline_csv
from scaler.simulate.types import PolicyResult, PolicyTimeline, Summary

WEEK = 7 * 86400
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def summary() -> Summary:
    return Summary(1000, 990, 10, 0.0, 1.5, 9.25, 40, 15.0, 7200.0, 4)


def policy(
    name: str,
    *,
    desired: list[int],
    ready: list[int],
    queue: list[int],
    signal: list[float],
    reasons: list[int],
    reason_names: list[str],
) -> PolicyResult:
    timeline = PolicyTimeline(
        array("i", desired),
        array("i", ready),
        array("i", queue),
        array("d", signal),
        array("b", reasons),
        reason_names,
    )
    return PolicyResult(name, "queue", summary(), timeline, "shared")


def idle(name: str, seconds: int) -> PolicyResult:
    """``seconds`` of two ready replicas and an empty queue, built fast."""
    timeline = PolicyTimeline(
        array("i", [2]) * seconds,
        array("i", [2]) * seconds,
        array("i", bytes(4 * seconds)),
        array("d", bytes(8 * seconds)),
        array("b", bytes(seconds)),
        ["-"],
    )
    return PolicyResult(name, "queue", summary(), timeline, "shared")


ARRIVALS = array("i", [0, 7, 1])
QUEUE = policy(
    "queue",
    desired=[2, 4, 4],
    ready=[2, 2, 4],
    queue=[0, 5, 1],
    signal=[0.0, 2.5, 1 / 3],
    reasons=[0, 1, 0],
    reason_names=["-", "ScaleUpLimit"],
)
CPU = policy(
    "cpu-hpa",
    desired=[2, 2, 3],
    ready=[2, 2, 2],
    queue=[0, 6, 9],
    signal=[0.1, 0.45, float("nan")],
    reasons=[0, 0, 1],
    reason_names=["-", "odd, with a comma"],
)


# -- CSV ---------------------------------------------------------------------------------
def test_csv_has_a_header_and_one_row_per_second(tmp_path: Path) -> None:
    path = tmp_path / "timeline.csv"
    write_timeline_csv(path, ARRIVALS, [QUEUE, CPU])
    text = path.read_bytes().decode("utf-8")  # read_text would translate the \r\n
    assert text.splitlines()[0] == (
        "time,arrivals,queue_desired,queue_ready,queue_queue,queue_signal,queue_reason,"
        "cpu-hpa_desired,cpu-hpa_ready,cpu-hpa_queue,cpu-hpa_signal,cpu-hpa_reason"
    )
    assert text.splitlines()[1:] == [
        "0,0,2,2,0,0,-,2,2,0,0.1,-",
        "1,7,4,2,5,2.5,ScaleUpLimit,2,2,6,0.45,-",
        '2,1,4,4,1,0.333333,-,3,2,9,nan,"odd, with a comma"',
    ]
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[3][-1] == "odd, with a comma"
    assert text.endswith("\r\n")


def test_csv_of_a_week_has_604800_rows(tmp_path: Path) -> None:
    path = tmp_path / "week.csv"
    write_timeline_csv(path, array("i", bytes(4 * WEEK)), [idle("queue", WEEK), idle("hpa", WEEK)])
    with path.open(encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    assert lines == 1 + WEEK
    assert path.read_bytes()[-40:].endswith(b"\r\n604799,0,2,2,0,0,-,2,2,0,0,-\r\n")


def test_csv_with_a_short_timeline_is_refused_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "timeline.csv"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(ValueError, match="policy 'queue': timeline desired has 3 entries"):
        write_timeline_csv(path, array("i", [0, 0, 0, 0]), [QUEUE])
    assert path.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["timeline.csv"]


def test_csv_with_an_unknown_reason_is_refused(tmp_path: Path) -> None:
    bad = policy("bad", desired=[1], ready=[1], queue=[0], signal=[0.0], reasons=[3],
                 reason_names=["-"])  # fmt: skip
    with pytest.raises(ValueError, match="reason index out of range"):
        write_timeline_csv(tmp_path / "t.csv", array("i", [0]), [bad])
    assert os.listdir(tmp_path) == []


def test_csv_into_a_missing_directory_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_timeline_csv(tmp_path / "missing" / "t.csv", ARRIVALS, [QUEUE])
    assert os.listdir(tmp_path) == []


# -- atomic writes ------------------------------------------------------------------------
def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old", encoding="utf-8")
    with atomic_text(path) as f:
        f.write("new")
        assert path.read_text(encoding="utf-8") == "old"  # not visible until the end
    assert path.read_text(encoding="utf-8") == "new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_that_fails_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="renderer crashed"), atomic_binary(path) as f:
        f.write(b"half a png")
        raise RuntimeError("renderer crashed")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]


def test_atomic_write_that_fails_creates_no_file(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_text(tmp_path / "out.csv") as f:
        f.write("partial")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_atomic_write_gives_the_usual_permissions(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x", encoding="utf-8")
    with atomic_text(tmp_path / "atomic") as f:
        f.write("x")
    assert (tmp_path / "atomic").stat().st_mode == (tmp_path / "plain").stat().st_mode


# -- plot ---------------------------------------------------------------------------------
def png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_plot_is_a_png_with_a_panel_per_policy(tmp_path: Path) -> None:
    path = tmp_path / "plot.png"
    write_plot(path, ARRIVALS, [QUEUE, CPU], title="three seconds", burst_at=1.0)
    one = tmp_path / "one.png"
    write_plot(one, ARRIVALS, [QUEUE], title="three seconds")
    (width, height), (width_one, height_one) = png_size(path), png_size(one)
    assert width == width_one == 1200
    assert 400 <= height_one < height <= 1200  # the second policy adds a panel
    assert path.stat().st_size > 10_000
    assert sorted(os.listdir(tmp_path)) == ["one.png", "plot.png"]


def test_plot_of_a_week_is_downsampled(tmp_path: Path) -> None:
    path = tmp_path / "week.png"
    arrivals = array("i", [1, 0, 0]) * (WEEK // 3)
    write_plot(path, arrivals, [idle("queue", WEEK), idle("cpu-hpa", WEEK)], title="a week")
    assert png_size(path)[0] == 1200


def test_plot_refuses_bad_input_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_plot(tmp_path / "missing" / "p.png", ARRIVALS, [QUEUE], title="t")
    with pytest.raises(ValueError, match="the trace is empty"):
        write_plot(tmp_path / "p.png", array("i"), [], title="t")
    with pytest.raises(ValueError, match="expected 2"):
        write_plot(tmp_path / "p.png", array("i", [0, 0]), [QUEUE], title="t")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [
        pytest.param(0, 1, id="empty"),
        pytest.param(2_000, 1, id="fits"),
        pytest.param(3_600, 2, id="an-hour"),
        pytest.param(86_400, 60, id="a-day"),
        pytest.param(WEEK, 600, id="a-week"),
        pytest.param(10**9, 500_000, id="beyond-round-lengths"),
    ],
)
def test_buckets_are_round_and_at_most_2000(seconds: int, bucket: int) -> None:
    assert bucket_seconds(seconds) == bucket


def test_buckets_keep_the_maximum_so_spikes_survive() -> None:
    assert bucket_max(array("i", [1, 5, 2, 0, 3]), 2).tolist() == [5, 2, 3]
    assert bucket_max(array("i", [1, 5]), 1).tolist() == [1, 5]


def test_arrivals_are_counted_per_minute_and_a_partial_minute_is_a_rate() -> None:
    arrivals = array("i", [1]) * 150
    values, starts = arrivals_per_minute(arrivals, 1)
    assert (values.tolist(), starts.tolist()) == ([60, 60, 60], [0, 60, 120])
    values, starts = arrivals_per_minute(arrivals, 120)  # each bucket: its busiest minute
    assert (values.tolist(), starts.tolist()) == ([60, 60], [0, 120])


# -- progress -----------------------------------------------------------------------------
class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_draws_nothing_when_not_on_a_terminal() -> None:
    clock, stream = FakeClock(), io.StringIO()
    with Progress(100, stream=stream, clock=clock) as bar:
        clock.now += 60
        bar.update(50)
    assert stream.getvalue() == ""


def test_progress_on_a_closed_stream_draws_nothing() -> None:
    stream = io.StringIO()
    stream.close()
    bar = Progress(100, stream=stream, clock=FakeClock())
    bar.update(50)
    bar.close()


def test_progress_waits_two_seconds_then_draws_throttled_and_clears() -> None:
    clock, stream = FakeClock(), FakeTerminal()
    bar = Progress(100, stream=stream, clock=clock)
    # t=1.9 s: a run this short never shows a bar.
    clock.now += 1.9
    bar.update(10)
    assert stream.getvalue() == ""
    # t=2.5 s: slow enough to be worth a bar.
    clock.now += 0.6
    bar.update(25)
    first = "\r" + render_line("simulating", 25, 100, 2.5)
    assert stream.getvalue() == first
    # t=2.55 s: within 0.1 s of the last draw, so no redraw.
    clock.now += 0.05
    bar.update(30)
    assert stream.getvalue() == first
    # t=2.7 s: redrawn.
    clock.now += 0.15
    bar.update(50)
    second = "\r" + render_line("simulating", 50, 100, 2.7)
    assert stream.getvalue() == first + second
    bar.close()
    assert stream.getvalue() == first + second + "\r" + " " * len(first[1:]) + "\r"
    bar.close()  # twice is fine
    bar.update(60)  # and nothing draws after close
    assert stream.getvalue().endswith(" \r")


def test_progress_as_a_context_manager_clears_on_exit() -> None:
    clock, stream = FakeClock(), FakeTerminal()
    with Progress(10, stream=stream, clock=clock, label="week") as bar:
        clock.now += 3
        bar.update(5)
    assert stream.getvalue().startswith("\rweek [")
    assert stream.getvalue().endswith("\r")


def test_progress_line_shows_bar_share_elapsed_and_estimate() -> None:
    assert (
        render_line("simulating", 25, 100, 10.0)
        == "simulating [########......................]  25%  10 s, ~30 s left"
    )
    assert render_line("run", 120, 100, 4.0) == "run [" + "#" * 30 + "] 100%  4 s"
    assert render_line("run", 0, 0, 1.0) == "run [" + "#" * 30 + "] 100%  1 s"
