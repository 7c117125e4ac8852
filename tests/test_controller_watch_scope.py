"""``scaler run`` picks the watch scope: targets in more than ``CLUSTER_SCOPE_ABOVE``
namespaces are served by three cluster-wide watches, not three per namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from scaler.config import parse_config
from scaler.controller.app import serving
from scaler.kube.cache import CLUSTER_SCOPE_ABOVE
from tests.support.fake_kube import FakeKube, running_cluster
from tests.support.waits import until

KINDS = ("deployments", "pods", "horizontalpodautoscalers")


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeKube]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        yield cluster.fake


def _config(namespaces: list[str], **top: Any) -> Any:
    metric = {
        "name": "queue",
        "type": "External",
        "query": "queue",
        "target": {"type": "AverageValue", "averageValue": 1},
    }
    targets = [
        {"namespace": ns, "deployment": "ollama", "maxReplicas": 4, "metrics": [metric]}
        for ns in namespaces
    ]
    return parse_config(
        {
            "prometheusUrl": "http://127.0.0.1:9",  # unreachable: every target holds
            "metricsHost": "127.0.0.1",
            "metricsPort": 0,
            "leaderElection": {"enabled": False},
            "targets": targets,
            **top,
        }
    )


@pytest.mark.parametrize(
    ("namespaces", "top", "watches"),
    [
        pytest.param(CLUSTER_SCOPE_ABOVE + 1, {}, 1, id="auto-above-the-threshold"),
        pytest.param(2, {"watchScope": "cluster"}, 1, id="cluster-by-config"),
        pytest.param(2, {}, 2, id="auto-below"),
    ],
)
async def test_the_scope_in_force_decides_how_many_watches(
    kube: FakeKube, tmp_path: Path, namespaces: int, top: dict[str, Any], watches: int
) -> None:
    names = [f"team-{i}" for i in range(namespaces)]
    for ns in names:
        kube.add_deployment(ns, "ollama", replicas=2)
    kube.add_deployment("elsewhere", "ollama", replicas=2)  # no target there
    kubeconfig = str(kube.write_kubeconfig(tmp_path / "scaler-kubeconfig"))
    async with serving(_config(names, **top), kubeconfig=kubeconfig) as (service, _):
        await until(lambda: service.controller.ticks >= 2, what="two ticks")
        assert {kind: kube.watch.started[kind] for kind in KINDS} == dict.fromkeys(KINDS, watches)
    lists = {k: n for k, n in kube.request_counts().items() if k[0] == "list"}
    assert lists == {("list", kind): watches for kind in KINDS}
