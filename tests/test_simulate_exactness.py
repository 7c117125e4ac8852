"""The simulator's shortcut is exact: reusing a metric's proposal while its inputs are
unchanged gives the very run that recomputing it at every poll gives, as the
controller does.

Each case replays a random trace against a policy twice and compares the results
second by second: replicas, queue, signal, the reason of every decision, and the
summary figures.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.policy import MetricProposal, MetricReading, MetricSpec, propose_metric
from scaler.policy.calculator import Context
from scaler.simulate import decider
from scaler.simulate.model import ROUTINGS
from scaler.simulate.policies import build_policy
from scaler.simulate.replica import ModelParams
from scaler.simulate.runner import run_policy, service_times
from scaler.simulate.sampling import trace_from_rates
from scaler.simulate.types import PolicyResult

# A Pods metric read from the last scrape and a CPU metric with a short window. Runs
# last up to 600 s, so pods started in a run cross the HPA's 300 s CPU
# initialization period, where a CPU proposal starts to depend on the time.
PODS_CONFIG = """
pollInterval: 1
targets:
  - namespace: chatbot
    deployment: ollama
    minReplicas: 1
    maxReplicas: 6
    metrics:
      - name: queued
        type: Pods
        query: sum by (pod) (ollama_proxy_queue_depth)
        target: {type: AverageValue, averageValue: 2}
      - name: cpu
        type: Resource
        resource: cpu
        query: sum by (pod) (rate(container_cpu_usage_seconds_total[10s]))
        target: {type: Utilization, averageUtilization: 60}
    behavior:
      scaleDown:
        stabilizationWindowSeconds: 20
"""


def _both(policy_name: str, rates: list[float], seed: int, **options: Any) -> list[PolicyResult]:
    params = ModelParams(
        cold_start=float(seed % 40), max_queue=4 + seed % 8, router_max_queue=seed % 30
    )
    trace = trace_from_rates("random", rates, step=10.0, seed=seed)
    times = service_times(trace, params, exponential=seed % 2 == 0, seed=seed)
    policy = build_policy(policy_name, **options)
    return [
        run_policy(trace, times, policy, params, seed=seed, burst_at=None, reuse_proposals=reuse)
        for reuse in (True, False)
    ]


def _assert_same(reused: PolicyResult, recomputed: PolicyResult) -> None:
    assert reused.summary == recomputed.summary
    fast, slow = reused.timeline, recomputed.timeline
    assert fast.desired == slow.desired
    assert fast.ready == slow.ready
    assert fast.queue == slow.queue
    assert fast.reasons == slow.reasons
    assert fast.signal.tobytes() == slow.signal.tobytes()  # NaN-safe, bit for bit


_rates = st.lists(st.floats(min_value=0.0, max_value=1.5), min_size=5, max_size=60)
_settings = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


_routings = st.sampled_from(ROUTINGS)


@_settings
@given(rates=_rates, seed=st.integers(min_value=0, max_value=10_000), routing=_routings)
def test_the_default_queue_policy_is_the_same_with_or_without_reuse(
    rates: list[float], seed: int, routing: str
) -> None:
    _assert_same(*_both("queue", rates, seed, routing=routing))


@_settings
@given(
    rates=_rates,
    seed=st.integers(min_value=0, max_value=10_000),
    lag=st.sampled_from([0.0, 7.0, 180.0]),
    routing=_routings,
)
def test_the_cpu_hpa_is_the_same_with_or_without_reuse(
    rates: list[float], seed: int, lag: float, routing: str
) -> None:
    _assert_same(*_both(f"cpu-hpa@{routing}", rates, seed, cpu_hpa_lag=lag))


@_settings
@given(rates=_rates, seed=st.integers(min_value=0, max_value=10_000), routing=_routings)
def test_a_pods_metric_and_young_cpu_pods_are_the_same_with_or_without_reuse(
    tmp_path_factory: pytest.TempPathFactory, rates: list[float], seed: int, routing: str
) -> None:
    path = tmp_path_factory.mktemp("config") / "pods.yaml"
    path.write_text(PODS_CONFIG)
    _assert_same(*_both(f"config@{routing}", rates, seed, config_path=path))


def test_reuse_is_exercised_on_a_busy_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a vacuous comparison: the run scales, and proposals are reused."""
    computed = []

    def counting(metric: MetricSpec, reading: MetricReading | None, ctx: Context) -> MetricProposal:
        computed.append(metric.name)
        return propose_metric(metric, reading, ctx)

    monkeypatch.setattr(decider, "propose_metric", counting)
    rates = [0.1] * 20 + [1.2] * 30 + [0.05] * 40
    reused, recomputed = _both("queue", rates, 3)
    _assert_same(reused, recomputed)
    assert reused.summary.scale_events >= 2
    polls = 900 // 2 + 1  # 900 s at the default config's 2 s poll, from t=0
    assert 0 < computed.count("cpu") < polls / 2
    assert 0 < computed.count("queue") < polls
