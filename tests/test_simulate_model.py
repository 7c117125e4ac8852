"""The model of Ollama replicas and of the routing in front of them, event by event."""

from __future__ import annotations

from array import array

import pytest

from scaler.simulate.model import Cluster
from scaler.simulate.policies import build_policy
from scaler.simulate.replica import DRAINING, READY, STARTING, ModelParams
from scaler.simulate.runner import run_policy, service_times
from scaler.simulate.types import SimulationError, Trace

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
    cluster = Cluster(PARAMS, 2, seed=3, marks_idle=False)  # the HPA: by age alone
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


def _busy(cluster: Cluster, loads: list[int], times: list[float]) -> None:
    """Give the i-th ready pod ``loads[i]`` requests (slots, then its queue)."""
    pods = list(cluster.ready)
    request = 0
    for pod, load in zip(pods, loads, strict=True):
        cluster.ready[:] = [pod]
        for _ in range(load):
            cluster.arrive(request, 0.0, times)
            request += 1
    cluster.ready[:] = pods


def test_scale_down_removes_the_pods_holding_least_ties_to_the_youngest() -> None:
    cluster = Cluster(ModelParams(parallel=2, max_queue=4), 6, seed=1, routing="random")
    for i, pod in enumerate(cluster.replicas):
        pod.ready_at = float(i)  # ollama-5 the most recently ready
    times = [100.0] * 20
    _busy(cluster, [0, 2, 0, 3, 1, 2], times)  # loads as the controller marks them
    cluster.scale_to(3, now=1.0)
    # Cost 0 (ollama-2 then ollama-0, the younger first), then cost 1 (ollama-4).
    assert [p.name for p in cluster.replicas] == ["ollama-1", "ollama-3", "ollama-5"]
    assert [r.name for r in cluster.draining] == ["ollama-4"]  # the idle two leave at once
    assert (cluster.in_flight, cluster.queued) == (7, 1)  # ollama-4's answer still runs


def test_without_marks_the_youngest_go_whatever_they_hold() -> None:
    cluster = Cluster(ModelParams(parallel=2, max_queue=4), 6, seed=1, marks_idle=False)
    for i, pod in enumerate(cluster.replicas):
        pod.ready_at = float(i)
    _busy(cluster, [0, 2, 0, 3, 1, 2], [100.0] * 20)
    cluster.scale_to(3, now=1.0)
    assert [p.name for p in cluster.replicas] == ["ollama-0", "ollama-1", "ollama-2"]
    assert {p.name for p in cluster.draining} == {"ollama-3", "ollama-4", "ollama-5"}


def test_cpu_counter_follows_busy_time_across_back_to_back_requests() -> None:
    params = ModelParams(parallel=1, max_queue=5, busy_cores=2.0, idle_cores=0.1)
    cluster = Cluster(params, 1, seed=1)
    replica = cluster.replicas[0]
    times = [10.0, 10.0]
    cluster.arrive(0, 0.0, times)
    cluster.arrive(1, 0.0, times)
    _drain(cluster, 100.0, times)
    # Busy 0..20 without a gap at 2 cores (the limit: no idle share on top), then
    # idle at 0.1 core.
    assert replica.cpu_seconds(30.0, params) == pytest.approx(2.0 * 20 + 0.1 * 10)
    samples = [replica.cpu_seconds(t, params) for t in (0, 5, 10, 15, 20, 25)]
    assert samples == sorted(samples)


# -- routing -------------------------------------------------------------------------
def test_shared_queue_binds_late_a_new_replica_takes_the_oldest_request_first() -> None:
    params = ModelParams(parallel=1, router_max_queue=10, cold_start=30.0)
    cluster = Cluster(params, 1, seed=1, routing="shared")
    times = [100.0] * 5
    for request in range(4):
        cluster.arrive(request, float(request), times)
    # One in the slot, three in the router's queue, none bound to a pod yet.
    assert (cluster.in_flight, cluster.queued, len(cluster.backlog)) == (1, 3, 3)
    assert all(not r.queue for r in cluster.replicas)
    cluster.scale_to(3, now=5.0)
    _drain(cluster, 35.0, times)  # both new pods ready at 35 s
    # The two oldest queued requests (arrived at 1 s and 2 s) start at once.
    assert cluster.waits == [0.0, 34.0, 33.0]
    assert [arrived for _, arrived in cluster.backlog] == [3.0]
    # The next free slot (the first pod, at 100 s) takes the last one.
    _drain(cluster, 100.0, times)
    assert cluster.waits[-1] == 97.0 and not cluster.backlog


def test_shared_queue_never_sends_new_work_to_a_draining_replica() -> None:
    params = ModelParams(parallel=1, router_max_queue=10)
    cluster = Cluster(params, 2, seed=1, routing="shared")
    first, second = cluster.replicas
    second.ready_at = 1.0  # the newest ready: removed first
    times = [20.0, 10.0, 5.0, 5.0]
    for request in range(4):
        cluster.arrive(request, 0.0, times)
    assert (first.active, second.active, len(cluster.backlog)) == (1, 1, 2)
    cluster.scale_to(1, now=1.0)
    assert second.state == DRAINING and second in cluster.draining
    _drain(cluster, 40.0, times)
    # The draining pod finished its own request at 10 s and took nothing new, though
    # two were queued: they waited for the pod that stays, free at 20 s.
    assert cluster.waits == [0.0, 0.0, 20.0, 25.0]
    assert second.busy_seconds == 10.0 and second not in cluster.draining
    assert first.busy_seconds == 30.0


def test_shared_queue_is_bounded_in_total_and_rejects_beyond_it() -> None:
    params = ModelParams(parallel=2, max_queue=1, router_max_queue=3)
    cluster = Cluster(params, 2, seed=1, routing="shared")
    times = [50.0] * 10
    for request in range(10):
        cluster.arrive(request, 0.0, times)
    # 4 slots busy, 3 waiting (the router's bound, not 1 per pod), 3 rejected.
    assert (cluster.in_flight, cluster.queued, cluster.rejected) == (4, 3, 3)
    assert [r.active for r in cluster.replicas] == [2, 2]
    assert cluster.unserved_waits(7.0) == [7.0, 7.0, 7.0]


def test_shared_queue_spreads_over_free_slots_before_stacking_on_one_pod() -> None:
    cluster = Cluster(ModelParams(parallel=2, router_max_queue=0), 3, seed=4, routing="shared")
    for request in range(3):
        cluster.arrive(request, 0.0, [9.0] * 3)
    assert [r.active for r in cluster.replicas] == [1, 1, 1]


def test_least_routing_picks_the_pod_with_fewest_outstanding_requests() -> None:
    params = ModelParams(parallel=1, max_queue=5)
    cluster = Cluster(params, 3, seed=2, routing="least")
    a, b, c = cluster.replicas
    times = [100.0] * 9
    for request in range(6):
        cluster.arrive(request, 0.0, times)
    # Each pod in turn is (one of) the least loaded: 2 outstanding each.
    assert [r.active + len(r.queue) for r in cluster.replicas] == [2, 2, 2]
    b.queue.clear()  # b is now the least loaded (1): it must get the next request
    cluster.queued -= 1
    cluster.arrive(6, 1.0, times)
    assert [len(r.queue) for r in (a, b, c)] == [1, 1, 1]
    assert b.queue[-1] == (6, 1.0)


def test_least_routing_breaks_ties_with_the_seeded_rng() -> None:
    def first_pods(seed: int) -> list[str]:
        cluster = Cluster(ModelParams(parallel=1, max_queue=5), 4, seed=seed, routing="least")
        picked = []
        for request in range(4):
            before = {r.name: r.active for r in cluster.replicas}
            cluster.arrive(request, 0.0, [9.0] * 4)
            picked += [r.name for r in cluster.replicas if r.active > before[r.name]]
        return picked

    assert sorted(first_pods(1)) == [f"ollama-{i}" for i in range(4)]  # never stacked
    assert first_pods(1) == first_pods(1)
    assert len({tuple(first_pods(seed)) for seed in range(10)}) > 1  # not always in order


def test_random_routing_keeps_a_backlog_on_the_pod_where_it_formed() -> None:
    cluster = Cluster(PARAMS, 1, seed=1, routing="random")
    times = [100.0] * 3
    for request in range(3):
        cluster.arrive(request, 0.0, times)
    cluster.scale_to(2, now=1.0)
    _drain(cluster, 31.0, times)
    new = cluster.replicas[1]
    assert new.state == READY and new.active == 0 and len(cluster.replicas[0].queue) == 2


def test_an_unknown_routing_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(SimulationError, match="unknown routing 'fastest'; valid: shared, least"):
        Cluster(PARAMS, 1, seed=1, routing="fastest")


def test_shared_queue_is_pods_times_slots_servers_never_idle_while_one_waits() -> None:
    # The property that makes the shared routing an M/M/c queue with c = pods x slots
    # (tests/test_simulate_theory.py): the head of the queue takes whichever slot
    # frees first, on any pod.
    cluster = Cluster(ModelParams(parallel=2, router_max_queue=10), 2, seed=1, routing="shared")
    times = [4.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    for request in range(6):
        cluster.arrive(request, 0.0, times)
    assert (cluster.in_flight, cluster.queued) == (4, 2)
    _drain(cluster, 100.0, times)
    assert sorted(cluster.waits) == [0.0, 0.0, 0.0, 0.0, 4.0, 10.0]


def test_the_mean_wait_counts_served_requests_and_those_still_queued() -> None:
    params = ModelParams(prompt_tokens_per_second=100.0, completion_tokens_per_second=15.0)
    # 900 completion tokens at 15 tokens/s: 60 s each; the third still waits at 100 s.
    trace = Trace("t", 100.0, array("d", [0.5] * 3), array("i", [0] * 3), array("i", [900] * 3))
    times = service_times(trace, params, exponential=False, seed=1)
    policy = build_policy("static:1", routing="random")
    summary = run_policy(trace, times, policy, params, seed=1, burst_at=None).summary
    assert summary.wait_mean == pytest.approx((0.0 + 60.0 + 99.5) / 3)
