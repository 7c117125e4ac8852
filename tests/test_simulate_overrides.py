"""``scaler simulate`` replays metric outages, pauses and pins through the
controller's own step: the timeline shows Fallback, Paused and Pinned, second by
second, and bad windows are usage errors."""

from __future__ import annotations

import copy
import math
from array import array
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaler.cli import main
from scaler.config import load
from scaler.policy import Reason
from scaler.simulate.overrides import check_windows, parse_window, windows_at
from scaler.simulate.policies import SimPolicy, build_policy
from scaler.simulate.replica import ModelParams
from scaler.simulate.runner import REASONS, run_policy, service_times
from scaler.simulate.types import OverrideWindow, PolicyResult, SimulationError, Trace

# 0 prompt tokens and 900 completion tokens at 15 tokens/s: 60 s per request.
PARAMS = ModelParams(prompt_tokens_per_second=100.0, completion_tokens_per_second=15.0)


def write_config(directory: Path, **top: Any) -> Path:
    """The default configuration with ``top`` set, as a file ``scaler run`` reads."""
    data = copy.deepcopy(load().model_dump(by_alias=True, exclude_none=True, mode="json"))
    data.update(top)
    path = directory / "scaler.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _trace(arrivals: list[float], duration: float, *windows: OverrideWindow) -> Trace:
    n = len(arrivals)
    zeros, tokens = array("i", [0] * n), array("i", [900] * n)
    return Trace("test", duration, array("d", arrivals), zeros, tokens, overrides=windows)


def _run(policy: SimPolicy, trace: Trace, *, reuse: bool = True) -> PolicyResult:
    times = service_times(trace, PARAMS, exponential=False, seed=1)
    return run_policy(trace, times, policy, PARAMS, seed=1, burst_at=None, reuse_proposals=reuse)


def _reasons(result: PolicyResult, start: int, end: int) -> set[str]:
    return {REASONS[i] for i in result.timeline.reasons[start:end]}


def test_an_outage_falls_back_after_the_threshold_and_the_window_holds_the_floor(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, fallback={"replicas": 5, "failureThreshold": 3})
    policy = build_policy("config", config_path=config, environ={})
    result = _run(policy, _trace([], 400.0, OverrideWindow("outage", 100.0, 200.0)))
    line = result.timeline
    # Row i is the second [i, i+1). Polls every 2 s: those of t=100 and 102 find no
    # metric and hold 2; the third in a row, t=104, holds the fallback's 5.
    assert list(line.desired[98:104]) == [2] * 6
    assert _reasons(result, 100, 104) == {Reason.METRICS_UNAVAILABLE.value}
    assert list(line.desired[104:200]) == [5] * 96
    assert _reasons(result, 104, 200) == {Reason.FALLBACK.value}
    assert all(math.isnan(v) for v in line.signal[100:200])  # nothing was read
    # The metrics return quiet at t=200; the last fallback (t=198) stays in the 60 s
    # scale-down window until t=258, then -50 % per 60 s and minReplicas give 2.
    assert list(line.desired[200:258]) == [5] * 58
    assert _reasons(result, 200, 258) == {Reason.SCALE_DOWN_STABILIZED.value}
    assert line.desired[258] == 2
    assert result.summary.scale_events == 2


def test_without_a_fallback_an_outage_only_holds(tmp_path: Path) -> None:
    result = _run(build_policy("queue"), _trace([], 300.0, OverrideWindow("outage", 100.0, 200.0)))
    assert set(result.timeline.desired) == {2}
    assert _reasons(result, 100, 200) == {Reason.METRICS_UNAVAILABLE.value}


def test_a_pause_holds_through_a_crowd_and_the_rules_take_over_after_it() -> None:
    trace = _trace([50.5] * 8, 400.0, OverrideWindow("pause", 40.0, 120.0))
    result = _run(build_policy("queue"), trace)
    line = result.timeline
    assert list(line.desired[40:120]) == [2] * 80
    assert _reasons(result, 40, 120) == {Reason.PAUSED.value}
    assert line.queue[100] == 6  # the crowd waits on 2 replicas: nobody scales
    # t=120: the annotation is gone; 6 in the system for 2 replicas, +100 % allows 4.
    assert line.desired[120] == 4
    assert REASONS[line.reasons[120]] == Reason.SCALE_UP_LIMIT.value


def test_a_pin_sets_its_count_for_the_window_even_above_max() -> None:
    trace = _trace([], 300.0, OverrideWindow("pin", 60.0, 100.0, 12))
    result = _run(build_policy("queue"), trace)
    line = result.timeline
    assert list(line.desired[60:100]) == [12] * 40
    assert _reasons(result, 60, 100) == {Reason.PINNED.value}
    assert line.desired[100] == 10  # back under the rules: current above maxReplicas
    assert REASONS[line.reasons[100]] == Reason.CURRENT_ABOVE_MAX.value


def test_memoized_proposals_replay_overrides_as_the_plain_path_does(tmp_path: Path) -> None:
    config = write_config(tmp_path, fallback={"replicas": 4, "failureThreshold": 2})
    policy = build_policy("config", config_path=config, environ={})
    windows = (
        OverrideWindow("outage", 30.0, 90.0),
        OverrideWindow("pause", 150.0, 200.0),
        OverrideWindow("pin", 180.0, 240.0, 3),
    )
    trace = _trace([float(t) + 0.5 for t in range(0, 300, 7)], 400.0, *windows)
    fast, plain = _run(policy, trace), _run(policy, trace, reuse=False)
    assert fast.timeline.signal.tobytes() == plain.timeline.signal.tobytes()  # NaN too
    fast.timeline.signal = plain.timeline.signal
    assert fast.timeline == plain.timeline
    assert fast.summary == plain.summary
    shown = _reasons(fast, 0, 400)
    assert {Reason.FALLBACK.value, Reason.PAUSED.value, Reason.PINNED.value} <= shown


def test_windows_name_the_annotations_in_force() -> None:
    windows = (
        parse_window("outage", "0:10"),
        parse_window("pause", "5:20"),
        parse_window("pin", "5:30=3"),
    )
    check_windows(windows, 30.0)
    assert windows_at(windows, 4.0) == ({}, True)
    annotations, outage = windows_at(windows, 10.0)  # END is outside its window
    assert not outage
    assert annotations == {
        "scaler.example.com/paused": "true",
        "scaler.example.com/pinned-replicas": "3",
    }
    assert windows_at(windows, 30.0) == ({}, False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--outage", "600-900"], "--outage '600-900': expected START:END", id="form"),
        pytest.param(["--pin", "1:5"], "--pin '1:5': expected START:END=N", id="pin-no-n"),
        pytest.param(["--pause", "1:5=2"], "--pause '1:5=2': expected START:END", id="pause-n"),
        pytest.param(["--outage", "9:3"], "START 9 is not before END 3", id="order"),
        pytest.param(["--outage", "x:3"], "'x' is not a number of seconds", id="nan"),
        pytest.param(["--outage=-1:3"], "'-1' is not a time >= 0", id="negative"),
        pytest.param(["--outage", "1:inf"], "'inf' is not a time >= 0", id="infinite"),
        pytest.param(["--pin", "1:5=0"], "N must be a whole number from 1 to 10,000", id="pin-0"),
        pytest.param(["--pin", "1:5=" + "9" * 300], "'1:5=9999999", id="pin-huge-quoted-short"),
        pytest.param(["--outage", "100:2101"], "END is after the trace's end (2,100 s)", id="end"),
        pytest.param(["--pause", "1:10", "--pause", "5:20"], "1:10 and --pause 5:20", id="overlap"),
    ],
)
def test_bad_windows_exit_2_with_one_line_naming_option_and_value(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.csv"
    code = main(["simulate", "--scenario", "burst", "--csv", str(out), *argv])
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err and err.count("\n") == 1 and len(err) < 200
    assert not out.exists()


def test_a_pause_and_a_pin_may_overlap_but_two_pins_may_not() -> None:
    check_windows((parse_window("pause", "0:10"), parse_window("pin", "5:20=2")), 30.0)
    with pytest.raises(SimulationError, match="--pin 0:10=2 and --pin 5:20=3 overlap"):
        check_windows((parse_window("pin", "0:10=2"), parse_window("pin", "5:20=3")), 30.0)


def test_the_cli_replays_a_pause_into_the_csv_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.csv"
    argv = ["--scenario", "burst", "--policy", "queue", "--pause", "600:900", "--csv", str(out)]
    assert main(["simulate", *argv]) == 0
    capsys.readouterr()
    rows = out.read_text(encoding="utf-8").splitlines()
    reasons = [row.rsplit(",", 1)[1] for row in rows[1:]]
    assert set(reasons[600:900]) == {"Paused"}
    assert "Paused" not in reasons[:600] + reasons[900:]


def test_the_seeds_hpa_knows_no_pause_or_pin_but_an_outage_holds_it() -> None:
    windows = (OverrideWindow("pin", 60.0, 100.0, 7), OverrideWindow("outage", 150.0, 200.0))
    result = _run(build_policy("cpu-hpa"), _trace([], 300.0, *windows))
    assert set(result.timeline.desired) == {2}
    assert Reason.PINNED.value not in _reasons(result, 0, 300)
    # The HPA syncs every 15 s; its polls in the outage find no CPU and hold.
    assert _reasons(result, 151, 200) == {Reason.METRICS_UNAVAILABLE.value}
