"""Pods as the apiserver serves them (JSON), as the engine's Pod."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import CoreV1Api

from scaler.kube.pods import pod_from_json
from scaler.policy import Pod, PodPhase
from tests.support import fake_kube_objects as objects
from tests.support.fake_kube import Cluster, running_cluster

STARTED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
READY = datetime(2026, 3, 1, 12, 1, 30, tzinfo=UTC)


def _pod(**seed: Any) -> dict[str, Any]:
    """One pod's JSON as the fake apiserver serves it; ``seed`` as ``FakeKube.add_pod``."""
    fields: dict[str, Any] = {
        "labels": {"app": "ollama"},
        "phase": "Running",
        "ready": True,
        "ready_since": None,
        "start_time": objects.EPOCH,
        "containers": {"ollama": "1"},
        "deleting": False,
    }
    return objects.pod("ml", "ollama-0", **(fields | seed))


def test_a_running_ready_pod_keeps_its_times_as_unix_seconds() -> None:
    pod = pod_from_json(_pod(start_time=STARTED, ready_since=READY))
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


def test_a_pod_whose_ready_condition_is_false_is_not_ready() -> None:
    pod = pod_from_json(_pod(ready=False, start_time=STARTED, ready_since=READY))
    assert pod.ready is False
    assert pod.ready_transition_time == READY.timestamp()


def test_a_pod_without_a_ready_condition_has_unknown_readiness() -> None:
    pod = pod_from_json(_pod(phase="Pending", ready=None, start_time=None))
    assert (pod.phase, pod.ready, pod.ready_transition_time, pod.start_time) == (
        PodPhase.PENDING,
        None,
        None,
        None,
    )


def test_a_ready_condition_with_status_unknown_counts_as_not_ready() -> None:
    obj = _pod()
    unknown = {"type": "Ready", "status": "Unknown", "lastTransitionTime": "2026-03-01T12:00:00Z"}
    obj["status"]["conditions"] = [unknown]
    assert pod_from_json(obj).ready is False


def test_a_pod_with_nothing_but_a_name_has_nothing_known() -> None:
    assert pod_from_json({"metadata": {"name": "bare"}}) == Pod(
        name="bare", phase=PodPhase.UNKNOWN, ready=None, request=None
    )


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        pytest.param("Failed", PodPhase.FAILED, id="failed"),
        pytest.param("Succeeded", PodPhase.SUCCEEDED, id="succeeded"),
        pytest.param("", PodPhase.UNKNOWN, id="empty-is-neither-pending-nor-failed"),
        pytest.param("Exploded", PodPhase.UNKNOWN, id="unheard-of"),
    ],
)
def test_phases(phase: str, expected: PodPhase) -> None:
    assert pod_from_json(_pod(phase=phase)).phase is expected


def test_a_pod_with_a_deletion_timestamp_is_deleting() -> None:
    assert pod_from_json(_pod(deleting=True)).deleting is True
    assert pod_from_json(_pod(deleting=False)).deleting is False


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
def test_cpu_requests_in_cores(
    containers: dict[str, str | None], container: str | None, cores: float | None
) -> None:
    pod = pod_from_json(_pod(containers=containers), container=container)
    assert pod.request == cores


@pytest.mark.parametrize(
    "resources",
    [
        pytest.param(None, id="no-resources"),
        pytest.param({}, id="empty-resources"),
        pytest.param({"limits": {"cpu": "1"}}, id="limits-only"),
        pytest.param({"requests": None}, id="null-requests"),
    ],
)
def test_a_container_without_a_cpu_request_leaves_the_pod_without_one(
    resources: dict[str, Any] | None,
) -> None:
    obj = _pod(containers={"ollama": "1", "proxy": "1"})
    sidecar = obj["spec"]["containers"][1]
    del sidecar["resources"]
    if resources is not None:
        sidecar["resources"] = resources
    assert pod_from_json(obj).request is None
    assert pod_from_json(obj, container="ollama").request == 1.0


def test_a_pod_without_containers_has_no_request() -> None:
    obj = _pod()
    obj["spec"]["containers"] = []
    assert pod_from_json(obj).request is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-03-01T12:00:00Z", STARTED, id="whole-seconds-z"),
        pytest.param("2026-03-01T12:00:00.5Z", STARTED + timedelta(seconds=0.5), id="fraction"),
        pytest.param(
            "2026-03-01T12:00:00.123456Z",
            STARTED + timedelta(microseconds=123456),
            id="micro-time",
        ),
        pytest.param(
            "2026-03-01T12:00:00.123456789Z",
            STARTED + timedelta(microseconds=123456),
            id="nanoseconds-cut-to-microseconds",
        ),
        pytest.param(
            "2026-03-01T14:00:00+02:00",
            datetime(2026, 3, 1, 14, tzinfo=timezone(timedelta(hours=2))),
            id="offset",
        ),
        pytest.param(
            "2026-03-01T12:00:00.25", STARTED + timedelta(seconds=0.25), id="naive-is-utc"
        ),
    ],
)
def test_timestamps_become_unix_seconds(text: str, expected: datetime) -> None:
    obj = _pod(ready_since=READY)
    obj["status"]["startTime"] = text
    obj["status"]["conditions"][-1]["lastTransitionTime"] = text
    pod = pod_from_json(obj)
    assert pod.start_time == pod.ready_transition_time == expected.timestamp()


def test_a_timestamp_that_is_not_rfc_3339_is_a_value_error() -> None:
    obj = _pod()
    obj["status"]["startTime"] = "yesterday"
    with pytest.raises(ValueError, match="yesterday"):
        pod_from_json(obj)


# --- through the fake apiserver --------------------------------------------------------


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        yield cluster


async def test_a_served_pod_list_converts_item_by_item(kube: Cluster) -> None:
    kube.fake.add_pod("ml", "ollama-0", labels={"app": "ollama"}, start_time=STARTED)
    kube.fake.add_pod("ml", "ollama-1", labels={"app": "ollama"}, ready=False, deleting=True)
    response = await CoreV1Api(kube.api).list_namespaced_pod("ml", _preload_content=False)
    async with response:
        listed = json.loads(await response.read())
    pods = [pod_from_json(item) for item in listed["items"]]
    assert [(p.name, p.ready, p.deleting, p.start_time) for p in pods] == [
        ("ollama-0", True, False, STARTED.timestamp()),
        ("ollama-1", False, True, objects.EPOCH.timestamp()),
    ]


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
