"""Pods served by the (fake) apiserver, read by kubernetes-asyncio, as the engine's Pod."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import CoreV1Api

from scaler.kube.pods import pod_from_v1
from scaler.policy import Pod, PodPhase
from tests.fake_kube import Cluster, running_cluster

STARTED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
READY = datetime(2026, 3, 1, 12, 1, 30, tzinfo=UTC)


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        yield cluster


async def _read(kube: Cluster, container: str | None = None, **seed: Any) -> Pod:
    """Seed one pod, list it through the real client, convert it."""
    kube.fake.add_pod("ml", "ollama-0", labels={"app": "ollama"}, **seed)
    listed = await CoreV1Api(kube.api).list_namespaced_pod("ml", label_selector="app=ollama")
    [pod] = listed.items
    return pod_from_v1(pod, container=container)


async def test_a_running_ready_pod_keeps_its_times_as_unix_seconds(kube: Cluster) -> None:
    pod = await _read(kube, start_time=STARTED, ready_since=READY)
    assert pod == Pod(
        name="ollama-0",
        phase=PodPhase.RUNNING,
        ready=True,
        ready_transition_time=READY.timestamp(),
        start_time=STARTED.timestamp(),
        deleting=False,
        request=1.0,
    )
    assert pod.is_running_and_ready


async def test_a_pod_whose_ready_condition_is_false_is_not_ready(kube: Cluster) -> None:
    pod = await _read(kube, ready=False, start_time=STARTED, ready_since=READY)
    assert pod.ready is False
    assert pod.ready_transition_time == READY.timestamp()


async def test_a_pod_without_a_ready_condition_has_unknown_readiness(kube: Cluster) -> None:
    pod = await _read(kube, phase="Pending", ready=None, start_time=None)
    assert (pod.phase, pod.ready, pod.ready_transition_time, pod.start_time) == (
        PodPhase.PENDING,
        None,
        None,
        None,
    )


async def test_a_ready_condition_with_status_unknown_counts_as_not_ready(kube: Cluster) -> None:
    kube.fake.add_pod("ml", "ollama-0", labels={"app": "ollama"})
    unknown = {"type": "Ready", "status": "Unknown", "lastTransitionTime": "2026-03-01T12:00:00Z"}
    kube.fake.update("pods", "ml", "ollama-0", {"status": {"conditions": [unknown]}})
    listed = await CoreV1Api(kube.api).list_namespaced_pod("ml")
    assert pod_from_v1(listed.items[0]).ready is False


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        pytest.param("Failed", PodPhase.FAILED, id="failed"),
        pytest.param("Succeeded", PodPhase.SUCCEEDED, id="succeeded"),
        pytest.param("", PodPhase.UNKNOWN, id="empty-is-neither-pending-nor-failed"),
        pytest.param("Exploded", PodPhase.UNKNOWN, id="unheard-of"),
    ],
)
async def test_phases(kube: Cluster, phase: str, expected: PodPhase) -> None:
    assert (await _read(kube, phase=phase)).phase is expected


async def test_a_pod_with_a_deletion_timestamp_is_deleting(kube: Cluster) -> None:
    assert (await _read(kube, deleting=True)).deleting is True


@pytest.mark.parametrize(
    ("containers", "container", "cores"),
    [
        pytest.param({"ollama": "2"}, None, 2.0, id="whole-cores"),
        pytest.param({"ollama": "1.5"}, None, 1.5, id="decimal-cores"),
        pytest.param({"ollama": "500m", "proxy": "250m"}, None, 0.75, id="summed"),
        pytest.param({"ollama": "100m", "proxy": "200m"}, None, 0.3, id="summed-in-millicores"),
        pytest.param({"ollama": "500m", "proxy": "250m"}, "ollama", 0.5, id="named-container"),
        pytest.param({"ollama": "0.0001"}, None, 0.001, id="rounded-up-to-a-millicore"),
        pytest.param({"ollama": "500m", "proxy": None}, None, None, id="one-lacks-a-request"),
        pytest.param({"ollama": "500m", "proxy": None}, "ollama", 0.5, id="uncounted-lacks-one"),
        pytest.param({"ollama": "500m"}, "sidecar", None, id="named-container-absent"),
        pytest.param({"ollama": "100n"}, None, None, id="unreadable-quantity"),
    ],
)
async def test_cpu_requests_in_cores(
    kube: Cluster, containers: dict[str, str | None], container: str | None, cores: float | None
) -> None:
    pod = await _read(kube, containers=containers, container=container)
    assert pod.request == cores


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        pytest.param("app=ollama", ["a", "b", "c"], id="equality"),
        pytest.param("app==ollama,tier!=canary", ["a", "c"], id="equality-and-inequality"),
        pytest.param("app in (ollama,proxy),!tier", ["a", "d"], id="set-based"),
        pytest.param("tier notin (canary)", ["a", "c", "d"], id="notin"),
    ],
)
async def test_the_fake_lists_pods_by_label_selector(
    kube: Cluster, selector: str, names: list[str]
) -> None:
    kube.fake.add_pod("ml", "a", labels={"app": "ollama"})
    kube.fake.add_pod("ml", "b", labels={"app": "ollama", "tier": "canary"})
    kube.fake.add_pod("ml", "c", labels={"app": "ollama", "tier": "main"})
    kube.fake.add_pod("ml", "d", labels={"app": "proxy"})
    kube.fake.add_pod("other", "e", labels={"app": "ollama"})
    listed = await CoreV1Api(kube.api).list_namespaced_pod("ml", label_selector=selector)
    assert [pod.metadata.name for pod in listed.items] == names
