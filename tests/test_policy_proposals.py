"""``propose``/``propose_metric`` and how long a proposal stays valid.

The only clock read in a metric's calculation is ``groupPods`` placing a CPU pod
inside or past its CPU initialization period; ``proposal_valid_until`` says when that
can next change the answer.
"""

from __future__ import annotations

import math

from scaler.policy import (
    History,
    MetricSpec,
    Observation,
    Pod,
    PodSample,
    PodValues,
    PolicySpec,
    SourceType,
    TargetType,
    TotalValue,
    context,
    decide,
    proposal_valid_until,
    propose,
    propose_metric,
)

CPU = MetricSpec("cpu", SourceType.RESOURCE, TargetType.UTILIZATION, 50.0)
QUEUE = MetricSpec("queue", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 1.0)
SPEC = PolicySpec(min_replicas=1, max_replicas=10, metrics=(QUEUE, CPU))


def _observation(pods: tuple[Pod, ...], cpu: dict[str, PodSample]) -> Observation:
    return Observation(
        spec_replicas=len(pods),
        status_replicas=len(pods),
        pods=pods,
        readings={"queue": TotalValue(3.0), "cpu": PodValues(cpu)},
    )


# Started at 0 and ready at 10; its sample (at 12, over a 30 s window) began before it
# was ready, so while it is in its CPU initialization period (until 300) its CPU does
# not count; from 300 on it does.
YOUNG = Pod("young", ready=True, ready_transition_time=10.0, start_time=0.0, request=1.0)
OLD = Pod("old", ready=True, ready_transition_time=-900.0, start_time=-1000.0, request=1.0)
SAMPLES = {"young": PodSample(1.0, 12.0, 30.0), "old": PodSample(0.1, 12.0, 30.0)}


def test_a_cpu_proposal_is_valid_until_a_pod_leaves_its_initialization_period() -> None:
    observation = _observation((OLD, YOUNG), SAMPLES)
    before = context(SPEC, observation, 299.0)
    reading = observation.readings["cpu"]
    assert proposal_valid_until(CPU, reading, before) == 300.0
    inside = propose_metric(CPU, reading, before)
    at_the_end = propose_metric(CPU, reading, context(SPEC, observation, 300.0))
    # Inside, only the old pod counts: 10 % of its request proposes 1 replica. From 300
    # on both count: 55 %, within tolerance of 50 %, so the 2 replicas stay.
    assert (inside.replicas, inside.value) == (1, 10)
    assert (at_the_end.replicas, at_the_end.value) == (2, 55)
    # Past every pod's period, nothing in the calculation depends on the time.
    assert proposal_valid_until(CPU, reading, context(SPEC, observation, 300.0)) == math.inf


def test_a_sample_without_timestamp_counts_as_taken_now_so_it_is_valid_only_now() -> None:
    samples = {"young": PodSample(1.0), "old": PodSample(0.1)}
    observation = _observation((OLD, YOUNG), samples)
    ctx = context(SPEC, observation, 20.0)
    assert proposal_valid_until(CPU, observation.readings["cpu"], ctx) == 20.0


def test_external_and_missing_readings_never_depend_on_the_time() -> None:
    observation = _observation((OLD, YOUNG), SAMPLES)
    ctx = context(SPEC, observation, 5.0)
    assert proposal_valid_until(QUEUE, observation.readings["queue"], ctx) == math.inf
    assert proposal_valid_until(CPU, None, ctx) == math.inf
    missing = propose_metric(CPU, None, ctx)
    assert missing.replicas is None and missing.error == "no reading"


def test_decide_with_given_proposals_is_decide_without_them() -> None:
    observation = _observation((OLD, YOUNG), SAMPLES)
    for now in (100.0, 299.0, 300.0, 400.0):
        history = History()
        plain, plain_history = decide(SPEC, observation, history, now)
        given = propose(SPEC, observation, now)
        reused, reused_history = decide(SPEC, observation, history, now, proposals=given)
        assert plain == reused and plain_history == reused_history
