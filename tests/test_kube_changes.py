"""The pure parts of the controller's caches: a Deployment's selector applied
client-side (against the fake apiserver's own reading of the same selector), and which
changes a watch reports wake a target (a pod turning ready, a Deployment changed by
someone else)."""

from __future__ import annotations

from typing import Any

import pytest

from scaler.kube.changes import changed_by_others, is_ready, turned_ready
from scaler.kube.errors import KubeError
from scaler.kube.observed import deployment_view, workload_of
from scaler.kube.selector import label_selector, selects
from tests.support import fake_kube_objects as objects

SELECTORS: list[dict[str, Any]] = [
    {"matchLabels": {"app": "ollama"}},
    {"matchLabels": {"app": "ollama", "tier": "gpu"}},
    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["ollama", "vllm"]}]},
    {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["cpu"]}]},
    {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
    {"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]},
    {
        "matchLabels": {"app": "ollama"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["gpu"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    },
]
LABELS: list[dict[str, str]] = [
    {},
    {"app": "ollama"},
    {"app": "vllm"},
    {"app": "ollama", "tier": "gpu"},
    {"app": "ollama", "tier": "cpu"},
    {"app": "ollama", "tier": "gpu", "canary": "yes"},
    {"tier": "gpu"},
]


@pytest.mark.parametrize("selector", SELECTORS, ids=label_selector)
def test_a_selector_selects_client_side_what_the_apiserver_selects(
    selector: dict[str, Any],
) -> None:
    requirements = objects.parse_selector(label_selector(selector))
    for labels in LABELS:
        expected = all(requirement(labels) for requirement in requirements)
        assert selects(selector, labels) is expected, labels


def test_an_operator_the_apiserver_refuses_is_a_value_error() -> None:
    odd = {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]}
    with pytest.raises(ValueError, match="'Near' is not a valid label selector operator"):
        selects(odd, {"app": "x"})


def _pod(*, ready: bool | None, deleting: bool = False) -> dict[str, Any]:
    return objects.pod(
        "ml",
        "ollama-a",
        labels={"app": "ollama"},
        phase="Running",
        ready=ready,
        ready_since=None,
        start_time=None,
        containers={"ollama": "1"},
        deleting=deleting,
    )


@pytest.mark.parametrize(
    ("old", "new", "wakes"),
    [
        pytest.param(None, _pod(ready=True), True, id="created-ready"),
        pytest.param(None, _pod(ready=False), False, id="created-unready"),
        pytest.param(_pod(ready=False), _pod(ready=True), True, id="turned-ready"),
        pytest.param(_pod(ready=None), _pod(ready=True), True, id="first-condition-ready"),
        pytest.param(_pod(ready=True), _pod(ready=True), False, id="still-ready"),
        pytest.param(_pod(ready=True), _pod(ready=False), False, id="turned-unready"),
        pytest.param(_pod(ready=True), None, False, id="deleted"),
        pytest.param(_pod(ready=False), _pod(ready=True, deleting=True), False, id="terminating"),
    ],
)
def test_only_a_pod_turning_ready_is_new_capacity(
    old: dict[str, Any] | None, new: dict[str, Any] | None, wakes: bool
) -> None:
    assert turned_ready(old, new) is wakes


def test_a_terminating_pod_is_not_ready() -> None:
    assert is_ready(_pod(ready=True))
    assert not is_ready(_pod(ready=True, deleting=True))
    assert not is_ready(None)


def _deployment(replicas: int, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return objects.deployment(
        "ml",
        "ollama",
        replicas=replicas,
        status_replicas=replicas,
        labels={"app": "ollama"},
        annotations=annotations or {},
        container="ollama",
        cpu="1",
    )


@pytest.mark.parametrize(
    ("old", "new", "written", "wakes"),
    [
        pytest.param(_deployment(2), _deployment(2), None, False, id="status-only"),
        pytest.param(_deployment(2), _deployment(5), None, True, id="kubectl-scale"),
        pytest.param(_deployment(2), _deployment(4), 4, False, id="our-own-patch"),
        pytest.param(_deployment(4), _deployment(6), 4, True, id="scaled-after-our-patch"),
        pytest.param(
            _deployment(2), _deployment(2, {"scaler/paused": "true"}), None, True, id="annotated"
        ),
        pytest.param(None, _deployment(2), None, True, id="created"),
        pytest.param(_deployment(2), None, 2, True, id="deleted"),
        pytest.param(None, None, None, False, id="nothing"),
    ],
)
def test_a_deployment_changed_by_someone_else_wakes_and_our_own_patch_does_not(
    old: dict[str, Any] | None, new: dict[str, Any] | None, written: int | None, wakes: bool
) -> None:
    assert changed_by_others(old, new, written) is wakes


def test_the_workload_is_built_from_objects_as_the_polling_path_builds_it() -> None:
    deployment = _deployment(3, {"a": "b"})
    pods = [_pod(ready=True), _pod(ready=False) | {"metadata": {"name": "ollama-b"}}]
    pods[0]["status"]["podIP"] = "10.0.0.1"
    pods[0]["metadata"]["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": "-5"}
    workload = workload_of(
        deployment_view(deployment), pods, conflicting_hpa="old", container=None, what="w"
    )
    assert (workload.spec_replicas, workload.annotations) == (3, {"a": "b"})
    assert [p.name for p in workload.pods] == ["ollama-a", "ollama-b"]
    assert [p.ready for p in workload.pods] == [True, False]
    assert workload.pod_ips == {"ollama-a": "10.0.0.1"}
    assert workload.deletion_costs == {"ollama-a": "-5"}
    assert workload.conflicting_hpa == "old"


def test_a_pod_the_engine_cannot_read_is_a_kube_error_naming_the_read() -> None:
    broken = _pod(ready=True)
    broken["status"]["startTime"] = "yesterday"
    with pytest.raises(KubeError, match="cached pods of ml/ollama: malformed pod") as caught:
        workload_of(
            deployment_view(_deployment(1)),
            [broken],
            conflicting_hpa=None,
            container=None,
            what="cached pods of ml/ollama",
        )
    assert isinstance(caught.value.__cause__, ValueError)
