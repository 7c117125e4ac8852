"""The per-target step along timelines: the overrides around the engine, the
fallback floor, failure counting and the record of a scale that was made.

Time is a plain number (seconds); each step asserts the replicas and the reason.
"""

from __future__ import annotations

import pytest

from scaler.policy import (
    MISSION_BEHAVIOR,
    PAUSE_ANNOTATION,
    PIN_ANNOTATION,
    Fallback,
    MetricSpec,
    Observation,
    PolicySpec,
    Reason,
    Seen,
    SourceType,
    StepState,
    TargetSpec,
    TargetType,
    TotalValue,
    Unavailable,
    propose,
    record_scaled,
    step,
)
from tests.support.timeline import Timeline

QUEUE = MetricSpec("queue", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 1.0)
CPU = MetricSpec("cpu", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 0.8)
MISSION = PolicySpec(min_replicas=2, max_replicas=10, metrics=(QUEUE,), behavior=MISSION_BEHAVIOR)
DOWN = {"queue": Unavailable("connection: refused")}
PAUSED = {PAUSE_ANNOTATION: "true"}


def test_an_hpa_beside_us_wins_over_everything_unless_it_does_not_count() -> None:
    line = Timeline(MISSION, replicas=3)
    d = line.at(0, load=9, hpa="seed", annotations={PIN_ANNOTATION: "7"})
    assert (d.replicas, d.reason) == (3, Reason.HPA_CONFLICT)
    assert "seed" in d.text
    # Shadow mode: nothing is patched, so the HPA beside us is the point; the rules decide.
    shadow = Timeline(MISSION, replicas=3, yield_to_hpa=False)
    d = shadow.at(0, load=9, hpa="seed")
    assert (d.replicas, d.reason) == (6, Reason.SCALE_UP_LIMIT)


def test_a_pause_holds_whatever_runs_and_wins_over_a_pin() -> None:
    line = Timeline(MISSION, replicas=4)
    for t in (0, 30, 300):  # the load would scale up, then down: nothing moves
        d = line.at(t, load=40 if t < 300 else 0, annotations={**PAUSED, PIN_ANNOTATION: "9"})
        assert (d.replicas, d.reason) == (4, Reason.PAUSED)
    # The annotation is removed: the rules decide on this very poll.
    d = line.at(302, load=40)
    assert (d.replicas, d.reason) == (8, Reason.SCALE_UP_LIMIT)


@pytest.mark.parametrize(
    ("value", "replicas"),
    [
        pytest.param("12", 12, id="above-max"),
        pytest.param("1", 1, id="below-min"),
        pytest.param(" 5 ", 5, id="spaces"),
        pytest.param("three", 4, id="not-a-number-holds"),
        pytest.param("-1", 4, id="negative-holds"),
    ],
)
def test_a_pin_sets_exactly_that_many_outside_min_and_max(value: str, replicas: int) -> None:
    line = Timeline(MISSION, replicas=4)
    d = line.at(0, load=4, annotations={PIN_ANNOTATION: value})
    assert (d.replicas, d.reason) == (replicas, Reason.PINNED)
    assert line.replicas == replicas


def test_outage_counts_failures_then_holds_the_fallback_floor_then_the_window_holds_it() -> None:
    line = Timeline(MISSION, replicas=2, fallback=Fallback(replicas=5, failure_threshold=3))
    assert line.at(0, load=2).reason is Reason.WITHIN_TOLERANCE
    # t=2, 4: no metric; below the threshold the engine holds.
    for t in (2, 4):
        d = line.at(t, readings=DOWN)
        assert (d.replicas, d.reason) == (2, Reason.METRICS_UNAVAILABLE)
    assert (line.state.failures, line.state.last_good_poll) == (2, 0)
    # t=6: the third failed poll in a row: hold at least the fallback.
    d = line.at(6, readings=DOWN)
    assert (d.replicas, d.reason) == (5, Reason.FALLBACK)
    assert "3 polls in a row" in d.text
    for t in range(8, 100, 2):  # steady while it lasts: no flapping (kedacore/keda#4249)
        d = line.at(t, readings=DOWN)
        assert (d.replicas, d.reason) == (5, Reason.FALLBACK)
    assert line.state.failures == 49
    # t=100: a quiet metric returns; the floor was remembered like a recommendation,
    # so the 60 s scale-down window holds 5 until the last fallback (t=98) leaves it.
    d = line.at(100, load=0)
    assert (d.replicas, d.reason) == (5, Reason.SCALE_DOWN_STABILIZED)
    assert (line.state.failures, line.state.last_good_poll) == (0, 100)
    assert line.at(157, load=0).reason is Reason.SCALE_DOWN_STABILIZED
    d = line.at(158, load=0)  # -50 % per 60 s, and not below minReplicas
    assert (d.replicas, d.reason) == (2, Reason.TOO_FEW_REPLICAS)


def test_the_fallback_is_a_floor_never_a_cut() -> None:
    line = Timeline(MISSION, replicas=8, fallback=Fallback(replicas=5, failure_threshold=1))
    d = line.at(0, readings=DOWN)
    assert (d.replicas, d.reason) == (8, Reason.FALLBACK)


def test_one_metric_still_read_is_no_failure() -> None:
    spec = PolicySpec(2, 10, (QUEUE, CPU), MISSION_BEHAVIOR)
    line = Timeline(spec, replicas=4, fallback=Fallback(replicas=9, failure_threshold=1))
    # cpu alone would scale down, which needs every metric: the engine holds.
    d = line.at(0, readings={"queue": Unavailable("timeout"), "cpu": TotalValue(2.0)})
    assert (d.replicas, d.reason) == (4, Reason.METRICS_INCOMPLETE)
    assert line.state.failures == 0
    # A missing reading counts as unavailable, as in decide.
    d = line.at(2, readings={"cpu": Unavailable("timeout")})
    assert (d.replicas, d.reason, line.state.failures) == (9, Reason.FALLBACK, 1)


def test_failures_count_while_paused_so_lifting_the_pause_meets_the_fallback() -> None:
    line = Timeline(MISSION, replicas=2, fallback=Fallback(replicas=6, failure_threshold=3))
    for t in (0, 2, 4):
        assert line.at(t, readings=DOWN, annotations=PAUSED).reason is Reason.PAUSED
    assert line.state.failures == 3
    d = line.at(6, readings=DOWN)
    assert (d.replicas, d.reason) == (6, Reason.FALLBACK)


def test_only_a_recorded_scale_counts_against_the_rate_limit() -> None:
    spec = TargetSpec(MISSION)
    seen = Seen(Observation(2, 2, readings={"queue": TotalValue(8)}))
    d, state = step(spec, StepState(), seen, 0.0)
    assert (d.replicas, d.reason) == (4, Reason.SCALE_UP_LIMIT)
    assert state.history.scale_up_events == ()  # the patch has not been made yet
    scaled = record_scaled(spec, state, d, 0.0)
    assert [e.replica_change for e in scaled.history.scale_up_events] == [2]
    # A patch that failed was never recorded: at t=1 the limit still allows 4 from 2,
    # while after the recorded +2 from 2 to 4 the period forbids more.
    again = Seen(Observation(2, 2, readings={"queue": TotalValue(8)}))
    assert step(spec, state, again, 1.0)[0].replicas == 4
    at_four = Seen(Observation(4, 4, readings={"queue": TotalValue(8)}))
    d, _ = step(spec, scaled, at_four, 1.0)
    assert (d.replicas, d.reason) == (4, Reason.SCALE_UP_LIMIT)


def test_precomputed_proposals_decide_alike_and_the_caller_says_whether_all_failed() -> None:
    spec = TargetSpec(MISSION, Fallback(replicas=5, failure_threshold=1))
    observation = Observation(2, 2, readings=DOWN)
    proposals = propose(MISSION, observation, 0.0)
    bare = Seen(Observation(2, 2))
    given = step(spec, StepState(), bare, 0.0, proposals=proposals, unread=True)
    computed = step(spec, StepState(), Seen(observation), 0.0)
    assert given == computed
    assert given[0].reason is Reason.FALLBACK
    _, state = step(spec, StepState(), bare, 0.0, proposals=proposals, unread=False)
    assert (state.failures, state.last_good_poll) == (0, 0.0)
