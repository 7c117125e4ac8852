"""``--capacity``: pods beyond what the nodes can run stay Pending, as on a full node."""

from __future__ import annotations

import pytest

from scaler.cli import build_parser
from scaler.errors import UsageError
from scaler.policy import PodPhase
from scaler.simulate.inputs import params_from
from scaler.simulate.model import Cluster
from scaler.simulate.policies import build_policy
from scaler.simulate.replica import PENDING, READY, STARTING, ModelParams
from scaler.simulate.runner import _Run
from scaler.simulate.scenarios import build_scenario

PARAMS = ModelParams(parallel=1, cold_start=30.0, idle_cores=0.0, capacity=3)


def _drain(cluster: Cluster, until: float, times: list[float]) -> None:
    while cluster.next_event_time() <= until:
        cluster.run_event(times)


def test_pods_beyond_the_capacity_stay_pending_forever() -> None:
    cluster = Cluster(PARAMS, 2, seed=1)
    cluster.scale_to(5, now=0.0)
    states = [r.state for r in cluster.replicas]
    assert states == [READY, READY, STARTING, PENDING, PENDING]
    _drain(cluster, 10_000.0, [])
    assert len(cluster.ready) == 3
    assert [r.state for r in cluster.replicas[3:]] == [PENDING, PENDING]


def test_a_scale_down_deletes_pending_pods_first() -> None:
    cluster = Cluster(PARAMS, 3, seed=1)
    cluster.scale_to(5, now=0.0)
    cluster.scale_to(3, now=1.0)
    assert [r.state for r in cluster.replicas] == [READY] * 3
    assert not cluster.pending


def test_a_pending_pod_starts_once_a_draining_pod_leaves_its_place() -> None:
    cluster = Cluster(ModelParams(parallel=1, cold_start=30.0, capacity=2), 2, seed=1)
    times = [50.0, 50.0]
    cluster.arrive(0, 0.0, times)
    cluster.arrive(1, 0.0, times)
    cluster.scale_to(1, now=1.0)  # one busy pod drains until 50 s, holding its place
    cluster.scale_to(2, now=2.0)
    newest = cluster.replicas[1]
    assert newest.state == PENDING
    _drain(cluster, 49.9, times)
    assert newest.state == PENDING
    _drain(cluster, 50.0, times)
    assert newest.state == STARTING and newest.created == 50.0 and newest.ready_at == 80.0
    _drain(cluster, 80.0, times)
    assert newest.state == READY


def test_the_runner_shows_pending_pods_to_the_policy_and_bills_no_time_for_them() -> None:
    trace = build_scenario("burst", seed=1)
    run = _Run(trace, [1.0] * len(trace.arrivals), build_policy("queue"), PARAMS, 1)
    run.cluster.scale_to(5, now=0.0)
    run.desired = 5
    phases = [pod.phase for pod in run.observation().pods]
    assert phases.count(PodPhase.PENDING) == len(run.cluster.replicas) - 3
    before = run.cluster.replica_seconds
    run.sample()
    assert run.cluster.replica_seconds - before == 3


@pytest.mark.parametrize("value", ["0", "-2"])
def test_a_capacity_below_one_pod_is_refused_naming_the_option(value: str) -> None:
    args = build_parser().parse_args(["simulate", "--capacity", value])
    with pytest.raises(UsageError, match=f"--capacity {value} is out of range"):
        params_from(args)
