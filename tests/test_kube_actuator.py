"""KubeActuator over real HTTP: the kubernetes-asyncio client against the fake apiserver."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import AppsV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from scaler.kube.actuator import SCALE_ATTEMPTS, KubeActuator
from scaler.kube.errors import Conflict, Forbidden, KubeError, NotFound
from scaler.policy import PAUSE_ANNOTATION
from tests.support.fake_kube import Cluster, running_cluster
from tests.support.fake_kube_objects import MICRO_TIME
from tests.support.fakes import FakeClock
from tests.support.waits import until

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


# --- observe -----------------------------------------------------------------------------


async def test_observe_reads_replicas_annotations_and_only_the_selected_pods(
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
    assert listed.query["labelSelector"] == "app=ollama"
    assert kube.fake.calls("GET", SCALE) == []  # the Deployment alone says it all


async def test_observe_of_a_scaled_to_zero_deployment(
    kube: Cluster, actuator: KubeActuator
) -> None:
    # The apiserver leaves status.replicas out when it is 0.
    kube.fake.add_deployment("ml", "idle", replicas=0, status_replicas=0)
    del kube.fake.get("deployments", "ml", "idle")["status"]["replicas"]
    workload = await actuator.observe("ml", "idle")
    assert (workload.spec_replicas, workload.status_replicas, workload.pods) == (0, 0, ())


async def test_observe_makes_two_requests_once_the_hpas_are_listed(
    kube: Cluster, actuator: KubeActuator
) -> None:
    await actuator.observe("ml", "ollama")
    assert sorted(r.path.rsplit("/", 1)[-1] for r in kube.fake.requests) == [
        "horizontalpodautoscalers",
        "ollama",
        "pods",
    ]
    for _ in range(3):
        before = len(kube.fake.requests)
        await actuator.observe("ml", "ollama")
        assert [(r.method, r.path) for r in kube.fake.requests[before:]] == [
            ("GET", "/apis/apps/v1/namespaces/ml/deployments/ollama"),
            ("GET", "/api/v1/namespaces/ml/pods"),
        ]


async def test_observe_releases_every_connection(kube: Cluster, actuator: KubeActuator) -> None:
    kube.fake.fail("GET", "/pods$", 500)
    with pytest.raises(KubeError):
        await actuator.observe("ml", "ollama")
    await actuator.observe("ml", "ollama")
    connector = kube.api.rest_client.pool_manager.connector
    assert connector._acquired == set()  # aiohttp's connections in use (private)


@pytest.mark.parametrize(
    ("selector", "expected", "names"),
    [
        pytest.param(
            {"matchLabels": {"app": "ollama", "tier": "main"}},
            "app=ollama,tier=main",
            ["main"],
            id="match-labels",
        ),
        pytest.param(
            {
                "matchLabels": {"app": "ollama"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["main", "canary"]},
                    {"key": "gpu", "operator": "Exists"},
                ],
            },
            "app=ollama,gpu,tier in (canary,main)",
            ["canary"],
            id="labels-in-exists",
        ),
        pytest.param(
            {
                "matchExpressions": [
                    {"key": "app", "operator": "In", "values": ["ollama"]},
                    {"key": "tier", "operator": "NotIn", "values": ["canary"]},
                    {"key": "gpu", "operator": "DoesNotExist"},
                ]
            },
            "app in (ollama),!gpu,tier notin (canary)",
            ["main", "untiered"],
            id="notin-does-not-exist",
        ),
    ],
)
async def test_observe_lists_pods_by_the_selector_the_scale_would_serve(
    kube: Cluster,
    actuator: KubeActuator,
    selector: dict[str, Any],
    expected: str,
    names: list[str],
) -> None:
    kube.fake.add_deployment("ml", "picky", selector=selector)
    kube.fake.add_pod("ml", "main", labels={"app": "ollama", "tier": "main"})
    kube.fake.add_pod("ml", "canary", labels={"app": "ollama", "tier": "canary", "gpu": "a"})
    kube.fake.add_pod("ml", "untiered", labels={"app": "ollama"})
    kube.fake.add_pod("ml", "proxy", labels={"app": "proxy", "tier": "main"})

    workload = await actuator.observe("ml", "picky")

    scale = await AppsV1Api(kube.api).read_namespaced_deployment_scale("picky", "ml")
    assert kube.fake.calls("GET", "/pods$")[-1].query["labelSelector"] == expected
    assert expected == scale.status.selector
    assert [p.name for p in workload.pods] == names


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        pytest.param({}, "spec.selector is empty", id="empty"),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["b"]}]},
            "'Near' is not a valid label selector operator",
            id="unknown-operator",
        ),
    ],
)
async def test_a_selector_that_cannot_select_the_pods_is_a_kube_error(
    kube: Cluster, actuator: KubeActuator, selector: dict[str, Any], message: str
) -> None:
    kube.fake.add_deployment("ml", "odd")
    kube.fake.get("deployments", "ml", "odd")["spec"]["selector"] = selector
    with pytest.raises(KubeError, match=re.escape(message)):
        await actuator.observe("ml", "odd")
    assert kube.fake.calls("GET", "/pods$") == []


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


async def test_of_several_hpas_on_the_deployment_the_first_by_name_is_named(
    kube: Cluster, actuator: KubeActuator
) -> None:
    kube.fake.add_hpa("ml", "ollama-queue", target_name="ollama")
    kube.fake.add_hpa("ml", "ollama-cpu", target_name="ollama")
    assert (await actuator.observe("ml", "ollama")).conflicting_hpa == "ollama-cpu"


async def test_the_hpas_are_listed_while_the_deployment_is_read(
    kube: Cluster, actuator: KubeActuator
) -> None:
    held = kube.fake.delay("GET", r"/deployments/ollama$")  # until released
    observing = asyncio.create_task(actuator.observe("ml", "ollama"))
    await until(lambda: bool(kube.fake.calls("GET", "/horizontalpodautoscalers$")))
    assert kube.fake.max_in_flight == 2
    assert kube.fake.calls("GET", "/pods$") == []  # the pods need the Deployment's selector
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
    kube.fake.fail("GET", "/pods$", 403, message="pods is forbidden")
    with pytest.raises(Forbidden, match=r"list pods of deployment ml/ollama .*pods is forbidden"):
        await actuator.observe("ml", "ollama")


async def test_a_server_error_reading_the_deployment_is_a_kube_error(
    kube: Cluster, actuator: KubeActuator
) -> None:
    kube.fake.fail("GET", "/deployments/ollama$", 500, message="etcd is down")
    with pytest.raises(KubeError, match=re.escape("etcd is down (500)")) as caught:
        await actuator.observe("ml", "ollama")
    assert (type(caught.value), caught.value.status) == (KubeError, 500)
    assert isinstance(caught.value.__cause__, ApiException)


async def test_a_pod_the_apiserver_should_never_serve_is_a_kube_error(
    kube: Cluster, actuator: KubeActuator
) -> None:
    kube.fake.add_pod("ml", "ollama-a", labels={"app": "ollama"})
    kube.fake.update("pods", "ml", "ollama-a", {"status": {"startTime": "yesterday"}})
    with pytest.raises(KubeError, match="list pods of deployment ml/ollama") as caught:
        await actuator.observe("ml", "ollama")
    assert isinstance(caught.value.__cause__, ValueError)


async def test_a_deployment_read_that_gets_no_answer_in_time_is_a_kube_error(
    kube: Cluster,
) -> None:
    actuator = KubeActuator(kube.api, request_timeout=0.05)
    kube.fake.delay("GET", "/deployments/ollama$", 1.0)
    with pytest.raises(KubeError, match=re.escape("no answer within 0.05 s")) as caught:
        await actuator.observe("ml", "ollama")
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert (await actuator.observe("ml", "ollama")).spec_replicas == 3


# --- the HPA list, shared per namespace ------------------------------------------------


def _hpa_lists(kube: Cluster, namespace: str = "ml") -> int:
    return len(kube.fake.calls("GET", f"/namespaces/{namespace}/horizontalpodautoscalers$"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now=100.0)


@pytest.fixture
def cached(kube: Cluster, clock: FakeClock) -> KubeActuator:
    for name in ("llama", "mistral"):
        kube.fake.add_deployment("ml", name)
    kube.fake.add_deployment("other", "ollama")
    return KubeActuator(kube.api, request_timeout=2.0, hpa_refresh=15.0, clock=clock)


async def test_one_hpa_list_per_namespace_serves_every_target_in_it(
    kube: Cluster, cached: KubeActuator
) -> None:
    targets = [("ml", "ollama"), ("ml", "llama"), ("ml", "mistral"), ("other", "ollama")]
    # t=100: all four observed at once (as one controller tick does): one list each.
    await asyncio.gather(*(cached.observe(ns, name) for ns, name in targets))
    assert (_hpa_lists(kube, "ml"), _hpa_lists(kube, "other")) == (1, 1)
    # t=100 again, next tick: the lists are fresh.
    for ns, name in targets:
        await cached.observe(ns, name)
    assert (_hpa_lists(kube, "ml"), _hpa_lists(kube, "other")) == (1, 1)


async def test_a_new_hpa_is_noticed_once_the_refresh_period_has_passed(
    kube: Cluster, cached: KubeActuator, clock: FakeClock
) -> None:
    # t=100: no HPA; the namespace is listed.
    assert (await cached.observe("ml", "llama")).conflicting_hpa is None
    # t=101: someone creates an HPA on llama; the list is 1 s old: not seen yet.
    clock.now = 101.0
    kube.fake.add_hpa("ml", "llama-cpu", target_name="llama")
    assert (await cached.observe("ml", "llama")).conflicting_hpa is None
    # t=114.9: still within the 15 s period.
    clock.now = 114.9
    assert (await cached.observe("ml", "mistral")).conflicting_hpa is None
    assert _hpa_lists(kube) == 1
    # t=115: the period is over; the first observe in the namespace lists again.
    clock.now = 115.0
    assert (await cached.observe("ml", "llama")).conflicting_hpa == "llama-cpu"
    assert (await cached.observe("ml", "mistral")).conflicting_hpa is None
    assert _hpa_lists(kube) == 2


async def test_a_failed_hpa_list_fails_observe_and_is_not_kept(
    kube: Cluster, cached: KubeActuator
) -> None:
    kube.fake.fail("GET", "/horizontalpodautoscalers$", 503, message="try later")
    with pytest.raises(KubeError, match="list horizontalpodautoscalers in ml: try later"):
        await cached.observe("ml", "ollama")
    # Same t=100: the failure was not cached, the next observe lists again.
    kube.fake.add_hpa("ml", "ollama-cpu", target_name="ollama")
    assert (await cached.observe("ml", "ollama")).conflicting_hpa == "ollama-cpu"
    assert _hpa_lists(kube) == 2


async def test_observers_waiting_for_one_hpa_list_share_its_failure(
    kube: Cluster, cached: KubeActuator
) -> None:
    kube.fake.fail("GET", "/horizontalpodautoscalers$", 500)
    results = await asyncio.gather(
        cached.observe("ml", "llama"), cached.observe("ml", "mistral"), return_exceptions=True
    )
    assert [type(r) for r in results] == [KubeError, KubeError]
    assert _hpa_lists(kube) == 1


async def test_a_cancelled_observe_does_not_cancel_the_shared_hpa_list(
    kube: Cluster, cached: KubeActuator
) -> None:
    held = kube.fake.delay("GET", "/horizontalpodautoscalers$")
    first = asyncio.create_task(cached.observe("ml", "llama"))
    second = asyncio.create_task(cached.observe("ml", "mistral"))
    await until(lambda: len(kube.fake.calls("GET", "/pods$")) == 2)  # both wait for the HPAs
    first.cancel()
    held.set()
    assert (await second).conflicting_hpa is None
    with pytest.raises(asyncio.CancelledError):
        await first
    assert _hpa_lists(kube) == 1


def test_a_negative_hpa_refresh_is_refused(kube: Cluster) -> None:
    with pytest.raises(ValueError, match="hpa refresh"):
        KubeActuator(kube.api, request_timeout=1.0, hpa_refresh=-1.0)


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
    assert kube.fake.calls("GET", SCALE) == []  # the Deployment's version did; no round trip


async def test_the_next_scale_uses_the_version_the_last_scale_returned(
    kube: Cluster, actuator: KubeActuator
) -> None:
    await actuator.observe("ml", "ollama")
    await actuator.scale("ml", "ollama", 5)
    after_first = _version(kube)
    await actuator.scale("ml", "ollama", 6)
    patches = kube.fake.calls("PATCH", SCALE)
    assert patches[1].body["metadata"]["resourceVersion"] == after_first
    assert (len(kube.fake.calls("GET", SCALE)), _replicas(kube)) == (0, 6)


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


async def test_a_status_update_after_observe_makes_the_patch_conflict_and_retry(
    kube: Cluster, actuator: KubeActuator
) -> None:
    await actuator.observe("ml", "ollama")
    # The deployment controller writes status.replicas: a new version for the scale too.
    kube.fake.update("deployments", "ml", "ollama", {"status": {"replicas": 3}})

    await actuator.scale("ml", "ollama", 4)

    assert [r.method for r in kube.fake.requests[-3:]] == ["PATCH", "GET", "PATCH"]
    assert _replicas(kube) == 4


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


# --- the fake's Deployment and scale ---------------------------------------------------


async def test_the_fake_serves_one_resource_version_for_a_deployment_and_its_scale(
    kube: Cluster,
) -> None:
    apps = AppsV1Api(kube.api)

    async def versions() -> tuple[str, str]:
        deployment = await apps.read_namespaced_deployment("ollama", "ml")
        scale = await apps.read_namespaced_deployment_scale("ollama", "ml")
        return deployment.metadata.resource_version, scale.metadata.resource_version

    first, same = await versions()
    assert first == same
    body = {"spec": {"replicas": 4}}
    patched = await apps.patch_namespaced_deployment_scale("ollama", "ml", body)
    version = patched.metadata.resource_version
    assert await versions() == (version, version)
    assert int(version) > int(first)
    kube.fake.update("deployments", "ml", "ollama", {"status": {"replicas": 4}})
    after_status, scale_after_status = await versions()
    assert after_status == scale_after_status != version


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
