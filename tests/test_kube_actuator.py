"""KubeActuator over real HTTP: the kubernetes-asyncio client against the fake apiserver."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from kubernetes_asyncio.client import AppsV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from scaler.kube.actuator import SCALE_ATTEMPTS, KubeActuator
from scaler.kube.base import PAUSE_ANNOTATION, Conflict, Forbidden, KubeError, NotFound
from tests.fake_kube import Cluster, running_cluster
from tests.fake_kube_objects import MICRO_TIME

SCALE = r"/deployments/ollama/scale$"


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        cluster.fake.add_deployment("ml", "ollama", replicas=3, status_replicas=2)
        yield cluster


@pytest.fixture
def actuator(kube: Cluster) -> KubeActuator:
    return KubeActuator(kube.api, request_timeout=2.0, instance="scaler-0")


def _replicas(kube: Cluster) -> int:
    replicas: int = kube.fake.get("deployments", "ml", "ollama")["spec"]["replicas"]
    return replicas


def _version(kube: Cluster) -> str:
    version: str = kube.fake.get("deployments", "ml", "ollama")["metadata"]["resourceVersion"]
    return version


async def _until(condition: Callable[[], bool]) -> None:
    """Let the fake's requests arrive: poll, at most ~2 s."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail("the condition never held")


# --- observe -----------------------------------------------------------------------------


async def test_observe_reads_scale_annotations_and_only_the_selected_pods(
    kube: Cluster, actuator: KubeActuator
) -> None:
    pause = {"metadata": {"annotations": {PAUSE_ANNOTATION: "true"}}}
    await AppsV1Api(kube.api).patch_namespaced_deployment("ollama", "ml", pause)
    kube.fake.add_pod("ml", "ollama-a", labels={"app": "ollama"})
    kube.fake.add_pod("ml", "ollama-b", labels={"app": "ollama"}, ready=False, phase="Pending")
    kube.fake.add_pod("ml", "proxy", labels={"app": "proxy"})
    kube.fake.add_pod("other", "ollama-elsewhere", labels={"app": "ollama"})

    workload = await actuator.observe("ml", "ollama")

    assert (workload.spec_replicas, workload.status_replicas) == (3, 2)
    assert workload.annotations == {PAUSE_ANNOTATION: "true"}
    assert [(p.name, p.is_running_and_ready) for p in workload.pods] == [
        ("ollama-a", True),
        ("ollama-b", False),
    ]
    assert all(p.request == 1.0 for p in workload.pods)
    assert kube.fake.calls("PATCH", "/deployments/ollama$")[0].content_type == (
        "application/strategic-merge-patch+json"
    )
    [listed] = kube.fake.calls("GET", "/pods$")
    assert listed.query["labelSelector"] == "app=ollama"  # the scale's status.selector


async def test_observe_ignores_hpas_that_target_something_else(
    kube: Cluster, actuator: KubeActuator
) -> None:
    kube.fake.add_hpa("ml", "other-deployment", target_name="proxy")
    kube.fake.add_hpa("ml", "statefulset", target_name="ollama", target_kind="StatefulSet")
    kube.fake.add_hpa("ml", "old-group", target_name="ollama", target_api_version="extensions/v1")
    kube.fake.add_hpa("other", "other-namespace", target_name="ollama")
    assert (await actuator.observe("ml", "ollama")).conflicting_hpa is None


@pytest.mark.parametrize(
    "api_version",
    [pytest.param("apps/v1", id="apps-v1"), pytest.param("", id="no-group-given")],
)
async def test_observe_names_an_hpa_that_targets_the_deployment(
    kube: Cluster, actuator: KubeActuator, api_version: str
) -> None:
    kube.fake.add_hpa("ml", "ollama-cpu", target_name="ollama", target_api_version=api_version)
    assert (await actuator.observe("ml", "ollama")).conflicting_hpa == "ollama-cpu"


async def test_observe_reads_deployment_scale_and_hpas_concurrently(
    kube: Cluster, actuator: KubeActuator
) -> None:
    held = kube.fake.delay("GET", r"/deployments/ollama$")  # until released
    observing = asyncio.create_task(actuator.observe("ml", "ollama"))
    # While the Deployment's GET hangs, the scale, the pods and the HPAs are read.
    await _until(lambda: bool(kube.fake.calls("GET", "/pods$")))
    await _until(lambda: bool(kube.fake.calls("GET", "/horizontalpodautoscalers$")))
    assert kube.fake.max_in_flight >= 2
    held.set()
    assert (await observing).spec_replicas == 3


async def test_observe_of_a_missing_deployment_is_not_found(actuator: KubeActuator) -> None:
    with pytest.raises(NotFound, match=re.escape('deployments.apps "missing" not found')) as caught:
        await actuator.observe("ml", "missing")
    assert caught.value.status == 404
    assert isinstance(caught.value.__cause__, ApiException)


async def test_observe_forbidden_to_list_pods_is_forbidden(
    kube: Cluster, actuator: KubeActuator
) -> None:
    kube.fake.fail("GET", "/pods$", 403)
    with pytest.raises(Forbidden) as caught:
        await actuator.observe("ml", "ollama")
    assert caught.value.status == 403


# --- scale -------------------------------------------------------------------------------


async def test_scale_patches_the_scale_with_the_version_observe_saw(
    kube: Cluster, actuator: KubeActuator
) -> None:
    await actuator.observe("ml", "ollama")
    seen = _version(kube)

    await actuator.scale("ml", "ollama", 5)

    [patch] = kube.fake.calls("PATCH", SCALE)
    assert patch.body == {"metadata": {"resourceVersion": seen}, "spec": {"replicas": 5}}
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert _replicas(kube) == 5
    assert int(_version(kube)) > int(seen)
    assert len(kube.fake.calls("GET", SCALE)) == 1  # observe's read; no extra round trip


async def test_scale_without_observe_reads_the_scale_first(
    kube: Cluster, actuator: KubeActuator
) -> None:
    await actuator.scale("ml", "ollama", 1)
    assert [r.method for r in kube.fake.requests] == ["GET", "PATCH"]
    assert _replicas(kube) == 1


async def test_a_conflict_is_retried_on_the_fresh_scale(
    kube: Cluster, actuator: KubeActuator
) -> None:
    await actuator.observe("ml", "ollama")
    seen = _version(kube)
    before = len(kube.fake.requests)
    # Someone annotates the Deployment after we observed it: our version is stale.
    annotate = {"metadata": {"annotations": {"a": "b"}}}
    await AppsV1Api(kube.api).patch_namespaced_deployment("ollama", "ml", annotate)
    fresh = _version(kube)

    await actuator.scale("ml", "ollama", 4)

    sent = kube.fake.requests[before:]
    assert [(r.method, r.path.endswith("/scale")) for r in sent] == [
        ("PATCH", False),  # the annotation
        ("PATCH", True),  # 409: stale version
        ("GET", True),
        ("PATCH", True),
    ]
    assert [r.body["metadata"]["resourceVersion"] for r in sent[1:] if r.method == "PATCH"] == [
        seen,
        fresh,
    ]
    assert _replicas(kube) == 4
    assert kube.fake.get("deployments", "ml", "ollama")["metadata"]["annotations"] == {"a": "b"}


async def test_conflicts_on_every_attempt_raise_conflict(
    kube: Cluster, actuator: KubeActuator
) -> None:
    kube.fake.fail("PATCH", SCALE, 409, times=None)
    with pytest.raises(Conflict) as caught:
        await actuator.scale("ml", "ollama", 6)
    assert caught.value.status == 409
    assert isinstance(caught.value.__cause__, KubeError)
    assert isinstance(caught.value.__cause__.__cause__, ApiException)
    assert len(kube.fake.calls("PATCH", SCALE)) == SCALE_ATTEMPTS == 3
    assert _replicas(kube) == 3


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(403, Forbidden, id="403-forbidden"),
        pytest.param(404, NotFound, id="404-not-found"),
        pytest.param(500, KubeError, id="500-kube-error"),
    ],
)
async def test_other_errors_are_raised_at_once_as_our_types(
    kube: Cluster, actuator: KubeActuator, status: int, error: type[KubeError]
) -> None:
    kube.fake.fail("PATCH", SCALE, status, message=f"scripted {status}")
    with pytest.raises(KubeError, match=f"scripted {status}") as caught:
        await actuator.scale("ml", "ollama", 6)
    assert type(caught.value) is error
    assert caught.value.status == status
    assert isinstance(caught.value.__cause__, ApiException)
    assert len(kube.fake.calls("PATCH", SCALE)) == 1


async def test_a_patch_that_gets_no_answer_in_time_is_a_kube_error(kube: Cluster) -> None:
    actuator = KubeActuator(kube.api, request_timeout=0.05)
    kube.fake.delay("PATCH", SCALE)  # hangs until the test ends
    with pytest.raises(KubeError, match=re.escape("no answer within 0.05 s")) as caught:
        await actuator.scale("ml", "ollama", 6)
    assert type(caught.value) is KubeError
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, TimeoutError)


# --- events ------------------------------------------------------------------------------


async def test_events_regard_the_deployment_with_its_uid(
    kube: Cluster, actuator: KubeActuator
) -> None:
    await actuator.observe("ml", "ollama")
    await actuator.event(
        "ml", "ollama", reason="SuccessfulRescale", message="New size: 4; reason: queue"
    )
    await actuator.event("ml", "ollama", reason="HPAConflict", message="stand by", warning=True)

    first, second = kube.fake.events
    uid = kube.fake.get("deployments", "ml", "ollama")["metadata"]["uid"]
    assert first["apiVersion"] == "events.k8s.io/v1"
    assert first["regarding"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ollama",
        "namespace": "ml",
        "uid": uid,
    }
    assert (first["type"], first["reason"], first["note"]) == (
        "Normal",
        "SuccessfulRescale",
        "New size: 4; reason: queue",
    )
    assert (first["reportingController"], first["reportingInstance"]) == ("scaler", "scaler-0")
    assert first["action"] == "Scale"
    assert MICRO_TIME.match(first["eventTime"])
    assert (second["type"], second["reason"]) == ("Warning", "HPAConflict")
    names = [first["metadata"]["name"], second["metadata"]["name"]]
    assert names[0] != names[1]
    assert all(name.startswith("ollama.") for name in names)


async def test_a_long_message_is_cut_to_what_the_api_accepts(
    kube: Cluster, actuator: KubeActuator
) -> None:
    await actuator.event("ml", "ollama", reason="FailedRescale", message="x" * 5000)
    assert len(kube.fake.events[0]["note"]) == 1024


@pytest.mark.parametrize(
    ("status", "error"),
    [pytest.param(500, KubeError, id="500"), pytest.param(403, Forbidden, id="403")],
)
async def test_an_event_that_cannot_be_recorded_raises(
    kube: Cluster, actuator: KubeActuator, status: int, error: type[KubeError]
) -> None:
    kube.fake.fail("POST", "/events$", status)
    with pytest.raises(error):
        await actuator.event("ml", "ollama", reason="SuccessfulRescale", message="m")
    assert kube.fake.events == []
