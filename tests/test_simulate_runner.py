"""Policies replayed on small hand-made traces, with the timeline checked second by second."""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any

import pytest

from scaler.policy import Reason
from scaler.simulate.model import Cluster
from scaler.simulate.policies import (
    IN_FLIGHT_SERIES,
    QUEUE_SERIES,
    ROUTER_IN_FLIGHT_SERIES,
    ROUTER_QUEUE_SERIES,
    build_policy,
)
from scaler.simulate.replica import ModelParams
from scaler.simulate.runner import REASONS, run_policy, service_times
from scaler.simulate.side_by_side import Simulation, simulate
from scaler.simulate.types import PolicyResult, Trace

# 0 prompt tokens and 900 completion tokens at 15 tokens/s: 60 s per request.
PARAMS = ModelParams(prompt_tokens_per_second=100.0, completion_tokens_per_second=15.0)


def _trace(arrivals: list[float], duration: float, *, burst_at: float | None = None) -> Trace:
    n = len(arrivals)
    return Trace(
        "test",
        duration,
        array("d", arrivals),
        array("i", [0] * n),
        array("i", [900] * n),
        burst_at=burst_at,
    )


def _run(policy: str, trace: Trace, **options: Any) -> PolicyResult:
    times = service_times(trace, PARAMS, exponential=False, seed=1)
    return run_policy(
        trace,
        times,
        build_policy(policy, **options),
        PARAMS,
        seed=1,
        burst_at=trace.burst_at,
    )


def test_static_replica_serves_in_order_and_waits_are_exact() -> None:
    result = _run("static:1", _trace([0.5, 0.5, 0.5], 200.0))
    summary = result.summary
    assert (summary.served, summary.rejected) == (3, 0)
    # Waits 0, 60, 120: nearest-rank p50 is 60, p95 and p99 are 120.
    assert (summary.wait_p50, summary.wait_p95, summary.wait_p99) == (60.0, 120.0, 120.0)
    assert summary.replica_seconds == 200.0
    assert list(result.timeline.queue[:3]) == [2, 2, 2]
    assert summary.scale_events == 0 and summary.reaction is None


def test_queue_policy_sees_the_crowd_at_its_next_poll() -> None:
    trace = _trace([100.2] * 8, 400.0, burst_at=100.0)
    result = _run("queue", trace)
    timeline = result.timeline
    # Row i is second [i, i+1). The poll of t=100 came before the crowd; the one of
    # t=102 reads the queue directly (the default config's fast path): 8 wanted,
    # +100 % of 2 allows 4.
    assert timeline.desired[101] == 2
    assert timeline.desired[102] == 4
    assert REASONS[timeline.reasons[102]] == Reason.SCALE_UP_LIMIT.value
    assert result.summary.reaction == 2.0
    # The new pods serve 30 s after they were asked for (cold start).
    assert timeline.ready[131] == 2 and timeline.ready[132] == 4
    assert max(timeline.desired) == 8


def test_cpu_hpa_is_slower_and_its_monitoring_lag_adds_up() -> None:
    trace = _trace([100.2] * 8, 600.0, burst_at=100.0)
    fast = _run("cpu-hpa", trace).summary.reaction
    lagged = _run("cpu-hpa", trace, cpu_hpa_lag=180.0).summary.reaction
    assert fast is not None and lagged is not None
    assert 15.0 <= fast <= 45.0  # a 15 s scrape, a 15 s window and a 15 s sync
    assert lagged >= fast + 165.0


def test_the_config_files_behavior_is_what_the_simulation_applies(tmp_path: Path) -> None:
    config = (Path(__file__).parents[1] / "scaler" / "default_config.yaml").read_text()
    config = config.replace(
        "      scaleDown:\n        stabilizationWindowSeconds: 60\n        selectPolicy: Max",
        "      scaleDown:\n        stabilizationWindowSeconds: 60\n        selectPolicy: Disabled",
    )
    assert "selectPolicy: Disabled" in config
    path = tmp_path / "no-scale-down.yaml"
    path.write_text(config)
    trace = _trace([10.2] * 8, 900.0, burst_at=10.0)
    result = _run("config", trace, config_path=path)
    desired = list(result.timeline.desired)
    assert max(desired) == 8
    assert desired == sorted(desired)  # it never scaled down
    default = list(_run("queue", trace).timeline.desired)
    assert default[-1] == 2  # the built-in policy did


def test_same_seed_same_result_in_one_process_or_several() -> None:
    trace = _trace([float(t) + 0.5 for t in range(0, 300, 7)], 120_000.0, burst_at=0.0)
    policies = (build_policy("queue"), build_policy("cpu-hpa"))
    simulation = Simulation(trace, policies, PARAMS, seed=5)
    serial, burst_serial = simulate(simulation, workers=1)
    parallel, burst_parallel = simulate(simulation, workers=2)
    assert burst_serial == burst_parallel == 0.0
    for one, other in zip(serial, parallel, strict=True):
        assert one.summary == other.summary
        assert one.timeline.desired == other.timeline.desired
        assert one.timeline.signal.tobytes() == other.timeline.signal.tobytes()


_DIRECT_CONFIG = """
targets:
  - namespace: chatbot
    deployment: ollama
    minReplicas: 1
    maxReplicas: 4
    metrics:
      - name: queue
        type: External
        query: sum({queued}) + sum({in_flight})
        direct: {{port: 11434, series: [{queued}, {in_flight}]}}
        target: {{type: AverageValue, averageValue: 1}}
"""


@pytest.mark.parametrize(
    ("queued", "in_flight", "seen"),
    [
        # The routers forward to draining pods too: they count what those still hold.
        pytest.param(ROUTER_QUEUE_SERIES, ROUTER_IN_FLIGHT_SERIES, 4.0, id="routers"),
        # Only ready pods' proxies are read: a draining pod's request is out of sight.
        pytest.param(QUEUE_SERIES, IN_FLIGHT_SERIES, 3.0, id="proxies"),
    ],
)
def test_a_direct_read_sees_draining_pods_through_the_routers_only(
    tmp_path: Path, queued: str, in_flight: str, seen: float
) -> None:
    path = tmp_path / "direct.yaml"
    path.write_text(_DIRECT_CONFIG.format(queued=queued, in_flight=in_flight))
    policy = build_policy("config", config_path=path)
    cluster = Cluster(PARAMS, 2, seed=1, routing="shared")
    for request in range(4):  # 2 in the slots, 2 in the router's queue
        cluster.arrive(request, 0.0, [60.0] * 4)
    cluster.replicas[1].ready_at = 1.0
    cluster.scale_to(1, now=1.0)  # its one request drains
    assert policy.view(PARAMS, cluster).key(policy.signals[0], 2.0) == seen
