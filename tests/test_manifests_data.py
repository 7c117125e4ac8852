"""Data that outlives a re-install (issue 12): the namespace and every volume live in
manifests/storage, applied once, so `kubectl delete -k manifests/overlays/NAME` (which
deletes exactly what the overlay renders) can select neither a claim nor the namespace.

The stack's builds and helpers are tests/test_manifests.py's.
"""

from __future__ import annotations

import functools
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.test_manifests import (
    BUILDS,
    K8S_VERSIONS,
    MANIFESTS,
    NAMESPACE,
    OVERLAYS,
    Obj,
    build,
    kubectl,
    pod_specs,
)

# The storage overlay each stack overlay runs on (docs/deploy.md says the same).
STORAGE_OF = {
    "minikube": "minikube",
    "gpu": "minikube",
    "cpu-hpa": "minikube",
    "shadow": "minikube",
    "scale-to-zero": "minikube",
    "multi-user": "multi-user",
}
STORAGE = sorted(p.name for p in (MANIFESTS / "storage").iterdir() if p.is_dir())
# What `kubectl delete -k` of a stack overlay must never take with it.
LASTING_KINDS = {"PersistentVolumeClaim", "PersistentVolume", "Namespace", "StorageClass"}


@functools.cache
def storage(name: str) -> tuple[Obj, ...]:
    folder = MANIFESTS / "storage" / name
    result = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {folder}: {result.stderr}"
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def claims(objects: tuple[Obj, ...]) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "PersistentVolumeClaim"}


def mounted_claims(name: str) -> set[str]:
    return {
        volume["persistentVolumeClaim"]["claimName"]
        for _, pod in pod_specs(name)
        for volume in pod["spec"].get("volumes", [])
        if "persistentVolumeClaim" in volume
    }


def test_every_overlay_names_its_storage() -> None:
    assert set(STORAGE_OF) == set(OVERLAYS)
    assert set(STORAGE_OF.values()) <= set(STORAGE)


@pytest.mark.parametrize("name", BUILDS)
def test_deleting_the_stack_cannot_select_a_volume_or_the_namespace(name: str) -> None:
    lasting = [(o["kind"], o["metadata"]["name"]) for o in build(name)]
    assert not [k for k in lasting if k[0] in LASTING_KINDS], lasting


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_storage_overlay_holds_exactly_the_claims_the_stack_mounts(name: str) -> None:
    assert mounted_claims(name) == set(claims(storage(STORAGE_OF[name])))


@pytest.mark.parametrize("name", STORAGE)
def test_the_storage_holds_the_namespace_and_lands_in_it(name: str) -> None:
    namespaces = [o for o in storage(name) if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == [NAMESPACE]
    for o in storage(name):
        assert o["kind"] in LASTING_KINDS, (o["kind"], o["metadata"]["name"])
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == NAMESPACE, o["metadata"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", STORAGE)
def test_the_storage_passes_the_strict_schema(name: str, version: str) -> None:
    for o in storage(name):
        kubernetes_validate.validate(o, version, strict=True)


@pytest.mark.parametrize("name", [s for s in STORAGE if s != "base"])
def test_minikube_claims_use_its_storage_class(name: str) -> None:
    for claim in claims(storage(name)).values():
        assert claim["spec"]["storageClassName"] == "standard", claim["metadata"]["name"]


def test_multi_user_shares_open_webuis_data_and_keeps_postgres() -> None:
    found = claims(storage("multi-user"))
    assert found["open-webui-data"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert found["postgres-data"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claims(storage("minikube"))["open-webui-data"]["spec"]["accessModes"] == [
        "ReadWriteOnce"
    ]
