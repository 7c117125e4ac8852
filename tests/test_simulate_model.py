"""The model of Ollama replicas behind the Service, event by event."""

from __future__ import annotations

import pytest

from scaler.simulate.model import DRAINING, READY, STARTING, Cluster, ModelParams

PARAMS = ModelParams(parallel=1, max_queue=2, cold_start=30.0, busy_cores=2.0, idle_cores=0.0)


def _drain(cluster: Cluster, until: float, times: list[float]) -> None:
    while cluster.next_event_time() <= until:
        cluster.run_event(times)


def test_one_slot_serves_fifo_then_rejects_beyond_the_queue() -> None:
    cluster = Cluster(PARAMS, 1, seed=1)
    times = [10.0] * 5
    for request in range(5):
        cluster.arrive(request, 0.0, times)
    # 1 in the slot, 2 queued, 2 rejected with 503.
    assert (cluster.in_flight, cluster.queued, cluster.rejected) == (1, 2, 2)
    _drain(cluster, 100.0, times)
    assert cluster.waits == [0.0, 10.0, 20.0]
    assert (cluster.in_flight, cluster.queued) == (0, 0)


def test_parallel_slots_serve_at_once() -> None:
    cluster = Cluster(ModelParams(parallel=3, max_queue=0), 1, seed=1)
    times = [5.0] * 4
    for request in range(4):
        cluster.arrive(request, 1.0, times)
    assert (cluster.in_flight, cluster.rejected) == (3, 1)


def test_a_new_replica_takes_traffic_only_after_its_cold_start() -> None:
    cluster = Cluster(PARAMS, 1, seed=1)
    cluster.scale_to(2, now=5.0)
    new = cluster.replicas[1]
    assert new.state == STARTING and cluster.ready == [cluster.replicas[0]]
    _drain(cluster, 34.9, [])
    assert new.state == STARTING
    _drain(cluster, 35.0, [])
    assert new.state == READY and new in cluster.ready


def test_scale_down_removes_starting_pods_first_then_the_newest_ready() -> None:
    cluster = Cluster(PARAMS, 2, seed=1)
    cluster.scale_to(3, now=0.0)
    starting = cluster.replicas[2]
    cluster.scale_to(2, now=1.0)
    assert starting not in cluster.replicas
    _drain(cluster, 100.0, [])  # its readiness event must not bring it back
    assert starting not in cluster.ready and starting.state == DRAINING
    cluster.scale_to(3, now=100.0)
    _drain(cluster, 130.0, [])
    newest = cluster.replicas[2]
    cluster.scale_to(2, now=131.0)
    assert newest not in cluster.replicas


def test_draining_replica_serves_its_queue_before_leaving() -> None:
    cluster = Cluster(PARAMS, 2, seed=3)
    times = [10.0] * 3
    target = cluster.ready[0]
    cluster.ready.remove(cluster.ready[1])  # route everything to one pod
    for request in range(3):
        cluster.arrive(request, 0.0, times)
    cluster.ready.append(cluster.replicas[1])
    target.ready_at = 50.0  # the newest ready: removed first
    cluster.scale_to(1, now=1.0)
    assert target.state == DRAINING and target in cluster.draining
    _drain(cluster, 100.0, times)
    assert cluster.waits == [0.0, 10.0, 20.0]
    assert target not in cluster.draining


def test_cpu_counter_follows_busy_time_across_back_to_back_requests() -> None:
    params = ModelParams(parallel=1, max_queue=5, busy_cores=2.0, idle_cores=0.1)
    cluster = Cluster(params, 1, seed=1)
    replica = cluster.replicas[0]
    times = [10.0, 10.0]
    cluster.arrive(0, 0.0, times)
    cluster.arrive(1, 0.0, times)
    _drain(cluster, 100.0, times)
    # Busy 0..20 without a gap, idle 0.1 core all along.
    assert replica.cpu_seconds(30.0, params) == pytest.approx(0.1 * 30 + 2.0 * 20)
    samples = [replica.cpu_seconds(t, params) for t in (0, 5, 10, 15, 20, 25)]
    assert samples == sorted(samples)
