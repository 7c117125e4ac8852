"""A controller with more watches than kubernetes-asyncio's default pool of 100
connections: every namespace's caches sync and the lease keeps being renewed.

Each watch holds one connection while it runs (HTTP/1.1), so with the default pool
40 namespaces' 120 watches took every connection: a third of the caches never synced,
and the lease renewal (and every scale PATCH) waited behind them, which on a real
cluster loses the leadership (found by ``bench_controller footprint --targets 100``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from scaler.config import parse_config
from scaler.controller.app import serving
from tests.support.fake_kube import FakeKube
from tests.support.loopback import no_env_proxy
from tests.support.waits import until

NAMESPACES = 40


def _target(namespace: str) -> dict[str, Any]:
    query = f'sum(ollama_proxy_queue_depth{{namespace="{namespace}"}})'
    return {
        "namespace": namespace,
        "deployment": "ollama",
        "maxReplicas": 10,
        "metrics": [
            {
                "name": "queue",
                "type": "External",
                "query": query,
                "target": {"type": "AverageValue", "averageValue": 1},
            }
        ],
    }


@pytest.fixture
async def kube(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeKube]:
    no_env_proxy(monkeypatch)
    async with FakeKube() as fake:
        yield fake


async def test_every_namespace_syncs_and_the_lease_is_renewed_past_a_hundred_watches(
    kube: FakeKube, tmp_path: Any
) -> None:
    namespaces = [f"team-{i}" for i in range(NAMESPACES)]
    for namespace in namespaces:
        kube.add_deployment(namespace, "ollama", replicas=2)
    config = parse_config(
        {
            "prometheusUrl": "http://127.0.0.1:9",  # unreachable: every target holds
            "pollInterval": 1,
            "metricsHost": "127.0.0.1",
            "metricsPort": 0,
            "watchScope": "namespace",  # 3 watches per namespace: 120 (auto would watch 3)
            "leaderElection": {
                "namespace": "team-0",
                "leaseDurationSeconds": 3,
                "retryPeriodSeconds": 0.5,
            },
            "targets": [_target(namespace) for namespace in namespaces],
        }
    )
    kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    async with serving(config, kubeconfig=kubeconfig):
        watches = kube.watch.started
        await until(
            lambda: all(watches[kind] >= NAMESPACES for kind in ("deployments", "pods")),
            what="a watch of each kind in every namespace",
        )
        await until(lambda: watches["horizontalpodautoscalers"] >= NAMESPACES, what="HPAs")
        renewed = len(kube.calls("PUT", "/leases/"))
        await until(
            lambda: len(kube.calls("PUT", "/leases/")) >= renewed + 3,
            timeout=10,
            what="three lease renewals beside 120 open watches",
        )
