"""Scale to zero and push in the simulator: a request held at zero, activation, the
idle period, the companion with minReplicas 1, and decisions at queue changes."""

from __future__ import annotations

import json
from array import array
from pathlib import Path
from typing import Any

import pytest

from scaler.cli import main
from scaler.config import DEFAULT_CONFIG_PATH
from scaler.policy import Reason
from scaler.simulate.decider import Poll
from scaler.simulate.policies import build_policy
from scaler.simulate.replica import ModelParams
from scaler.simulate.runner import REASONS, run_policy, service_times
from scaler.simulate.types import PolicyResult, Trace

# 900 completion tokens at 15 tokens/s: 60 s per request; a cold start of 30 s.
PARAMS = ModelParams(prompt_tokens_per_second=100.0, completion_tokens_per_second=15.0)
ZERO = "minReplicas: 0\n    scaleToZero: {metric: queue, idleSeconds: 300}"


def _config(tmp_path: Path, *, push_min_interval: float | None = None) -> Path:
    text = DEFAULT_CONFIG_PATH.read_text().replace("minReplicas: 2", ZERO)
    if push_min_interval is not None:
        text = f"pushMinInterval: {push_min_interval}\n{text}"
    path = tmp_path / "zero.yaml"
    path.write_text(text)
    return path


def _trace(arrivals: list[float], duration: float, tokens: int = 900) -> Trace:
    n = len(arrivals)
    completion = array("i", [tokens] * n)
    return Trace("t", duration, array("d", arrivals), array("i", [0] * n), completion)


def _run(
    trace: Trace,
    params: ModelParams = PARAMS,
    record: list[Poll] | None = None,
    **options: Any,
) -> PolicyResult:
    times = service_times(trace, params, exponential=False, seed=1)
    policy = build_policy("config", **options)
    return run_policy(trace, times, policy, params, seed=1, burst_at=None, record=record)


def test_a_request_at_zero_is_held_while_a_pod_starts(tmp_path: Path) -> None:
    result = _run(_trace([100.2], 900.0), config_path=_config(tmp_path))
    timeline, summary = result.timeline, result.summary
    assert timeline.desired[0] == 0 and timeline.desired[100] == 0  # starts at zero
    assert REASONS[timeline.reasons[100]] == Reason.IDLE.value
    # t=102: the poll reads the request the router holds: one pod at once.
    assert timeline.desired[102] == 1
    assert REASONS[timeline.reasons[102]] == Reason.ACTIVATION.value
    # It serves 30 s later (cold start); the request waited from 100.2 to 132.
    assert timeline.ready[131] == 0 and timeline.ready[132] == 1
    assert (summary.served, summary.rejected) == (1, 0)
    assert summary.wait_p95 == pytest.approx(31.8)
    assert summary.idle is not None
    assert (summary.idle.first_waits, summary.idle.first_wait_p95) == (1, pytest.approx(31.8))


def test_idle_for_idle_seconds_goes_back_to_zero(tmp_path: Path) -> None:
    result = _run(_trace([100.2], 900.0), config_path=_config(tmp_path))
    desired = list(result.timeline.desired)
    # Served 132..192; the poll of t=194 is the first to read 0; 300 s later: zero.
    assert desired[493] == 1
    assert desired[494] == 0
    assert REASONS[result.timeline.reasons[494]] == Reason.SCALED_TO_ZERO.value
    assert 0 not in desired[102:494]


def test_never_to_zero_while_a_request_is_in_flight(tmp_path: Path) -> None:
    # One answer of 9,000 tokens takes 600 s (132..732), longer than idleSeconds.
    result = _run(_trace([100.2], 1200.0, tokens=9000), config_path=_config(tmp_path))
    desired = list(result.timeline.desired)
    assert 0 not in desired[102:1032]  # in flight until 732, then 300 s idle
    assert desired[1034] == 0


def test_requests_beyond_the_routers_bound_at_zero_get_503(tmp_path: Path) -> None:
    params = ModelParams(
        prompt_tokens_per_second=100.0, completion_tokens_per_second=15.0, router_max_queue=2
    )
    result = _run(_trace([10.0] * 5, 300.0), params, config_path=_config(tmp_path))
    assert result.summary.rejected == 3


def test_push_activates_at_the_arrival_not_at_the_next_poll(tmp_path: Path) -> None:
    path = _config(tmp_path)
    polled = _run(_trace([100.2], 300.0), config_path=path)
    pushed = _run(_trace([100.2], 300.0), config_path=path, push=True)
    assert polled.scale_ups[0] == 102.0
    assert pushed.scale_ups[0] == pytest.approx(100.2)
    assert pushed.name.endswith("+push")


def test_pushed_decisions_are_coalesced_by_push_min_interval(tmp_path: Path) -> None:
    path = _config(tmp_path, push_min_interval=0.5)
    record: list[Poll] = []
    # A storm: 40 requests 10 ms apart, between two polls.
    arrivals = [100.1 + 0.01 * i for i in range(40)]
    _run(_trace(arrivals, 103.0), record=record, config_path=path, push=True)
    times = [p.now for p in record if 100.0 < p.now < 102.0]
    assert times == pytest.approx([100.1, 100.6])  # once at the first change, then 0.5 s on
    polls = [p.now for p in record if p.now in (100.0, 102.0)]
    assert polls == [100.0, 102.0]  # the polls go on


def test_a_policy_without_a_router_metric_does_not_push(tmp_path: Path) -> None:
    assert build_policy("cpu-hpa", push=True).push_interval is None
    assert build_policy("queue", push=True).push_interval == 0.05


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["simulate", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_the_closing_note_gives_the_savings_and_the_first_wait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _cli(capsys, "--scenario", "spikes", "--config", str(_config(tmp_path)))
    lines = out.splitlines()
    assert "first wait" in lines[1] and "after idle p95 (s)" in lines[2]
    assert any(line.split()[:2] == ["zero-min1", "shared"] for line in lines)
    note = lines[-1]
    assert note.startswith("zero: scale to zero saves ") and "against minReplicas 1" in note
    document = json.loads(
        _cli(capsys, "--scenario", "spikes", "--config", str(_config(tmp_path)), "--json")
    )
    zero, kept = document["policies"]["zero"], document["policies"]["zero-min1"]
    saved = kept["replica_seconds"] - zero["replica_seconds"]
    assert zero["replica_seconds_saved"] == pytest.approx(saved, abs=0.01)
    assert zero["first_waits_after_idle"] >= 1
    assert zero["first_wait_after_idle_p95_seconds"] >= 30.0  # at least a cold start


def test_without_zero_or_push_the_outputs_gain_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(_cli(capsys, "--scenario", "burst", "--json"))
    for figures in document["policies"].values():
        assert "first_wait_after_idle_p95_seconds" not in figures
    assert "first wait" not in _cli(capsys, "--scenario", "burst")
