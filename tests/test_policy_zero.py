"""Scale to zero along timelines: activation, the idle period, and what never happens.

Each step reads: at t, the routers hold X requests (queued + in flight), so the step
answers N replicas, because R. Time is a plain number (seconds).
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

from scaler.policy import (
    MISSION_BEHAVIOR,
    PAUSE_ANNOTATION,
    Behavior,
    MetricSpec,
    PolicySpec,
    PolicyType,
    Reason,
    ScalingPolicy,
    ScalingRules,
    SourceType,
    TargetType,
    TotalValue,
    Unavailable,
    ZeroRule,
)
from tests.support.timeline import Timeline

QUEUE = MetricSpec("queue", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 1.0)
CPU = MetricSpec("cpu", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 0.8)
# minReplicas 0 as the config builds it: the engine's minimum is 1, the rule does 0.
SPEC = PolicySpec(min_replicas=1, max_replicas=10, metrics=(QUEUE,), behavior=MISSION_BEHAVIOR)
RULE = ZeroRule("queue", idle_seconds=300.0)
DOWN = Unavailable("router unreachable")


def _line(replicas: int, spec: PolicySpec = SPEC) -> Timeline:
    return Timeline(spec, replicas=replicas, zero=RULE)


def test_idle_for_idle_seconds_at_one_goes_to_zero() -> None:
    line = _line(1)
    # t=0..299: nothing queued or in flight, but not yet for 300 s: one stays.
    for t in range(0, 300, 2):
        assert line.at(t, load=0).replicas == 1
    # t=300: 0 at every poll since t=0, for 300 s: zero.
    d = line.at(300, load=0)
    assert (d.current, d.replicas, d.reason, d.metric) == (1, 0, Reason.SCALED_TO_ZERO, "queue")
    # t=301: at zero with nothing to serve: hold zero.
    d = line.at(301, load=0)
    assert (d.replicas, d.reason) == (0, Reason.IDLE)


def test_a_request_during_the_idle_period_starts_it_again() -> None:
    line = _line(1)
    line.at(0, load=0)
    # t=250: one request in flight: the idle clock restarts.
    assert line.at(250, load=1).replicas == 1
    # t=252..551: zeros again, but not yet for 300 s since t=252.
    for t in range(252, 552, 2):
        assert line.at(t, load=0).replicas == 1, t
    assert line.at(552, load=0).reason is Reason.SCALED_TO_ZERO


def test_never_to_zero_while_anything_is_queued_or_in_flight() -> None:
    line = _line(1)
    # One request in flight for an hour: 1 on 1 replica is the target; the engine
    # says 1, but the routers never read 0, so the target never sleeps.
    for t in range(0, 3600, 2):
        d = line.at(t, load=1)
        assert d.replicas == 1, t
    # A fraction is not zero either (a router's share of a request in a sum).
    for t in range(3600, 7200, 2):
        assert line.at(t, load=0.001).replicas == 1


def test_an_unavailable_reading_restarts_the_idle_clock() -> None:
    line = _line(1)
    line.at(0, load=0)
    # t=200: the routers cannot be read: no decision on unreadable data, and the
    # idle period must be seen whole.
    d = line.at(200, readings={"queue": DOWN})
    assert (d.replicas, d.reason) == (1, Reason.METRICS_UNAVAILABLE)
    assert line.at(300, load=0).replicas == 1  # idle since t=300 only
    assert line.at(599, load=0).replicas == 1
    assert line.at(600, load=0).reason is Reason.SCALED_TO_ZERO


def test_a_missing_reading_counts_as_unavailable() -> None:
    spec = replace(SPEC, metrics=(QUEUE, CPU))
    line = _line(1, spec)
    line.at(0, load=0)
    # Only CPU was read at t=100: the queue metric is missing, so the clock restarts.
    line.at(100, readings={"cpu": TotalValue(0.0)})
    both = {"queue": TotalValue(0), "cpu": TotalValue(0)}
    assert line.at(300, readings=both).replicas == 1  # idle since t=300 only
    assert line.at(599, readings=both).replicas == 1
    assert line.at(600, readings=both).reason is Reason.SCALED_TO_ZERO


def test_at_zero_an_unavailable_reading_holds_zero() -> None:
    line = _line(0)
    d = line.at(0, readings={"queue": DOWN})
    assert (d.current, d.replicas, d.reason) == (0, 0, Reason.METRICS_UNAVAILABLE)
    d = line.at(2, readings={})
    assert (d.replicas, d.reason) == (0, Reason.METRICS_UNAVAILABLE)


def test_activation_ignores_stabilization_and_rate_limits() -> None:
    # Scale-up held for 10 minutes, and at most one pod per 10 minutes: at one
    # replica these rules would hold a burst; at zero they do not hold the first pod.
    slow = ScalingRules(
        600, MISSION_BEHAVIOR.scale_up.select_policy, (ScalingPolicy(PolicyType.PODS, 1, 600),), 0.1
    )
    spec = replace(SPEC, behavior=Behavior(scale_up=slow, scale_down=MISSION_BEHAVIOR.scale_down))
    line = _line(0, spec)
    assert line.at(0, load=0).reason is Reason.IDLE
    # t=2: a request is held at the router: one pod at once.
    d = line.at(2, load=1)
    assert (d.current, d.replicas, d.reason) == (0, 1, Reason.ACTIVATION)
    # t=4: after the activation the normal rules apply: the scale-up window holds
    # the 1 it was seeded with, so 8 requests get no second pod yet.
    d = line.at(4, load=8)
    assert (d.recommendation, d.replicas, d.reason) == (8, 1, Reason.SCALE_UP_STABILIZED)
    # t=700: the window holds only 8s; the Pods policy allows one pod per 600 s.
    d = line.at(700, load=8)
    assert (d.current, d.replicas, d.reason) == (1, 2, Reason.SCALE_UP_LIMIT)
    # t=701: the 1 -> 2 of t=700 is inside its period: no third pod.
    assert line.at(701, load=8).replicas == 2


def test_after_activation_the_mission_rules_scale_a_burst() -> None:
    line = _line(0)
    assert line.at(0, load=6).reason is Reason.ACTIVATION
    # t=1: +100 % per 15 s from 1 allows 2, though 6 are waiting.
    d = line.at(1, load=6)
    assert (d.replicas, d.reason) == (1, Reason.SCALE_UP_LIMIT)
    d = line.at(15, load=6)
    assert (d.replicas, d.reason) == (2, Reason.SCALE_UP_LIMIT)


def test_a_larger_target_comes_down_through_one() -> None:
    line = _line(4)
    replicas = []
    for t in range(0, 900, 2):
        replicas.append(line.at(t, load=0).replicas)
    # The scale-down window (60 s) and -50 % per 60 s bring 4 to 2 to 1; zero only
    # from 1, once the routers have read 0 for 300 s.
    assert sorted(set(replicas), reverse=True) == [4, 2, 1, 0]
    assert replicas.index(0) * 2 >= 300
    assert all(b in (a, a // 2) for a, b in pairwise(replicas))  # 1 // 2 is 0


def test_a_pause_at_zero_holds_zero_even_with_requests() -> None:
    line = _line(0)
    d = line.at(0, load=3, annotations={PAUSE_ANNOTATION: "true"})
    assert (d.replicas, d.reason) == (0, Reason.PAUSED)
    assert line.at(2, load=3).reason is Reason.ACTIVATION


def test_an_hpa_beside_the_target_wins_over_activation() -> None:
    line = _line(0)
    d = line.at(0, load=3, hpa="ollama")
    assert (d.replicas, d.reason) == (0, Reason.HPA_CONFLICT)


def test_without_the_rule_zero_stays_disabled_as_in_the_hpa() -> None:
    line = Timeline(SPEC, replicas=0)
    d = line.at(0, load=3)
    assert (d.replicas, d.reason) == (0, Reason.SCALING_DISABLED)


def test_the_activation_counts_as_a_scale_up_for_the_rate_limits() -> None:
    one_per_ten_minutes = (ScalingPolicy(PolicyType.PODS, 1, 600),)
    up = replace(MISSION_BEHAVIOR.scale_up, policies=one_per_ten_minutes)
    line = _line(0, replace(SPEC, behavior=replace(MISSION_BEHAVIOR, scale_up=up)))
    assert line.at(0, load=8).reason is Reason.ACTIVATION
    # t=2: the 0 -> 1 of t=0 is a scale-up event inside the 600 s period.
    d = line.at(2, load=8)
    assert (d.recommendation, d.replicas, d.reason) == (8, 1, Reason.SCALE_UP_LIMIT)
    assert line.at(600, load=8).replicas == 2
