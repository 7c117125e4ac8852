"""The controller's caches: ``CachedActuator`` with the real kubernetes-asyncio client
watching the fake API server over HTTP. Reads come from the caches (only the watches
reach the API server between changes), stale or unsynced caches refuse, and changes
worth deciding on wake the target."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scaler.kube.actuator import KubeActuator
from scaler.kube.cache import (
    CLUSTER_SCOPE_ABOVE,
    KUBE_STALE_AFTER,
    CachedActuator,
    Scope,
    pick_scope,
    watches_for,
)
from scaler.kube.errors import Forbidden, KubeError, NotFound
from scaler.kube.watched import WatchCache
from scaler.kube.workload import DELETION_COST_ANNOTATION
from scaler.policy import PAUSE_ANNOTATION
from tests.support.fake_kube import Cluster, running_cluster
from tests.support.waits import until

NS = "ml"
DEADLINE = 10.0


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        yield cluster


@pytest.fixture(params=["namespace", "cluster"])
def scope(request: pytest.FixtureRequest) -> Scope:
    """Both watch scopes: per namespace, and one cache of all namespaces."""
    return request.param  # type: ignore[no-any-return]


@dataclass
class Caching:
    actuator: CachedActuator
    woken: list[str] = field(default_factory=list)

    def wakes(self) -> Counter[str]:
        return Counter(self.woken)

    def cache(self, ns: str = NS) -> WatchCache:
        """The cache that serves ``ns``, in either scope."""
        caches = self.actuator.caches
        return caches[ns] if ns in caches else caches["*"]


@contextlib.asynccontextmanager
async def caching(
    api: Any,
    targets: dict[str, list[str]],
    *,
    clock: Callable[[], float] = time.monotonic,
    scope: Scope = "namespace",
    synced: bool = True,
) -> AsyncIterator[Caching]:
    """The actuator with its caches running (as ``scaler run`` owns them) and synced
    (``synced=False``: not waited for)."""
    rig = Caching(CachedActuator(api, targets, request_timeout=2.0, clock=clock, scope=scope))
    tasks = []
    for cache in rig.actuator.caches.values():
        cache.on_wake = rig.woken.append
        tasks += [asyncio.create_task(loop, name=n) for n, loop in cache.runs().items()]
    try:
        assert not synced or await rig.actuator.wait_synced(DEADLINE)
        yield rig
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def reads(kube: Cluster) -> Counter[tuple[str, str]]:
    """The requests that are not watches, by (verb, resource)."""
    counts = kube.fake.request_counts()
    return Counter({key: n for key, n in counts.items() if key[0] != "watch"})


def watches(kube: Cluster) -> Counter[str]:
    return Counter({r: n for (verb, r), n in kube.fake.request_counts().items() if verb == "watch"})


def seed(kube: Cluster, ns: str = NS, name: str = "ollama", *, replicas: int = 3) -> None:
    kube.fake.add_deployment(ns, name, replicas=replicas, annotations={PAUSE_ANNOTATION: "true"})
    kube.fake.add_pod(ns, f"{name}-a", labels={"app": name}, ip="10.0.0.1")
    kube.fake.add_pod(ns, f"{name}-b", labels={"app": name}, ready=False, phase="Pending")
    kube.fake.add_pod(ns, "proxy", labels={"app": "proxy"})


def _ready(kube: Cluster, pod: str, ready: bool, ns: str = NS) -> None:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    condition["lastTransitionTime"] = "2026-01-01T00:00:00Z"
    kube.fake.update("pods", ns, pod, {"status": {"phase": "Running", "conditions": [condition]}})


async def test_observe_gives_what_polling_gives_and_only_the_watches_reach_the_api(
    kube: Cluster, scope: Scope
) -> None:
    seed(kube)
    kube.fake.add_hpa(NS, "old-cpu-hpa", target_name="ollama")
    kube.fake.update(
        "pods", NS, "ollama-a", {"metadata": {"annotations": {DELETION_COST_ANNOTATION: "-2"}}}
    )
    polled = await KubeActuator(kube.api, request_timeout=2.0).observe(NS, "ollama")
    async with caching(kube.api, {NS: ["ollama"]}, scope=scope) as rig:
        before = reads(kube)
        for _ in range(50):  # fifty polls
            assert await rig.actuator.observe(NS, "ollama") == polled
        assert reads(kube) == before  # not one read more: the caches served them all
    assert polled.conflicting_hpa == "old-cpu-hpa"
    assert [p.name for p in polled.pods] == ["ollama-a", "ollama-b"]
    assert polled.deletion_costs == {"ollama-a": "-2"}
    assert {k: n for k, n in before.items() if k[0] == "list"} == {
        ("list", "deployments"): 1,
        ("list", "pods"): 2,  # one by the polling actuator, one by the cache
        ("list", "horizontalpodautoscalers"): 2,
    }
    assert watches(kube) == {"deployments": 1, "pods": 1, "horizontalpodautoscalers": 1}


async def test_a_watch_that_ends_and_a_410_and_observe_follows(kube: Cluster, scope: Scope) -> None:
    seed(kube)
    async with caching(kube.api, {NS: ["ollama"]}, scope=scope) as rig:
        await kube.fake.watch.wait_watches(3)
        assert kube.fake.watch.expire_watches() == 3  # the server ends every stream
        await kube.fake.watch.wait_watches(6)
        kube.fake.update("deployments", NS, "ollama", {"spec": {"replicas": 5}})
        await until(
            lambda: rig.cache().deployment(NS, "ollama")["spec"]["replicas"] == 5,
            what="the change after a resumed watch",
        )
        assert (await rig.actuator.observe(NS, "ollama")).spec_replicas == 5
        lists = reads(kube)[("list", "pods")]
        kube.fake.watch.compact()
        assert kube.fake.watch.expire_watches(gone=True, resource="pods") == 1  # 410
        kube.fake.delete("pods", NS, "ollama-b")  # in the gap: the re-list reports it
        await until(lambda: reads(kube)[("list", "pods")] == lists + 1, what="a re-list")
        await until(lambda: rig.cache().pods.get(f"{NS}/ollama-b") is None, what="the gap's delete")
        workload = await rig.actuator.observe(NS, "ollama")
        assert [p.name for p in workload.pods] == ["ollama-a"]


async def test_a_deployment_deleted_is_not_found_then_the_new_one_is_followed(
    kube: Cluster, scope: Scope
) -> None:
    seed(kube)
    async with caching(kube.api, {NS: ["ollama"]}, scope=scope) as rig:
        old_uid = kube.fake.get("deployments", NS, "ollama")["metadata"]["uid"]
        kube.fake.delete("deployments", NS, "ollama")
        await until(lambda: rig.woken, what="a wake for the deleted Deployment")
        with pytest.raises(NotFound, match="deployment ml/ollama not found"):
            await rig.actuator.observe(NS, "ollama")
        kube.fake.add_deployment(NS, "ollama", replicas=6, labels={"app": "ollama"})
        await until(lambda: len(rig.woken) == 2, what="a wake for the new Deployment")
        workload = await rig.actuator.observe(NS, "ollama")
        assert workload.spec_replicas == 6
        assert [p.name for p in workload.pods] == ["ollama-a", "ollama-b"]
        new = kube.fake.get("deployments", NS, "ollama")["metadata"]
        assert new["uid"] != old_uid
        await rig.actuator.scale(NS, "ollama", 7)  # the new one's version: no 409
        assert not kube.fake.calls("GET", "/deployments/ollama/scale$")
        assert kube.fake.get("deployments", NS, "ollama")["spec"]["replicas"] == 7


async def test_pods_churning_during_a_scale_up_are_counted_and_a_ready_one_wakes(
    kube: Cluster, scope: Scope
) -> None:
    seed(kube, replicas=2)
    _ready(kube, "ollama-b", True)
    async with caching(kube.api, {NS: ["ollama"]}, scope=scope) as rig:
        assert rig.woken == []  # the first lists wake nothing
        await rig.actuator.observe(NS, "ollama")
        await rig.actuator.scale(NS, "ollama", 4)  # our own write: no wake when it returns
        for name in ("ollama-c", "ollama-d"):
            kube.fake.add_pod(NS, name, labels={"app": "ollama"}, ready=False, phase="Pending")
        kube.fake.delete("pods", NS, "ollama-a")  # the old pod goes meanwhile
        kube.fake.add_pod(NS, "proxy-2", labels={"app": "proxy"})  # another app's: ignored
        await until(lambda: rig.cache().pods.get(f"{NS}/proxy-2"), what="the pods")
        assert rig.woken == []
        workload = await rig.actuator.observe(NS, "ollama")
        assert workload.spec_replicas == 4
        assert sorted((p.name, p.ready) for p in workload.pods) == [
            ("ollama-b", True),
            ("ollama-c", False),
            ("ollama-d", False),
        ]
        _ready(kube, "ollama-c", True)
        await until(lambda: rig.woken, what="a wake on the pod turning ready")
        assert rig.woken == [f"{NS}/ollama"]
        _ready(kube, "ollama-c", True)  # still ready (a status write): no second wake
        _ready(kube, "proxy-2", False)
        _ready(kube, "proxy-2", True)  # not the target's pod
        kube.fake.update("deployments", NS, "ollama", {"status": {"replicas": 4}})
        await until(
            lambda: rig.cache().deployments.get(f"{NS}/ollama")["status"]["replicas"] == 4,
            what="the status update",
        )
        assert rig.woken == [f"{NS}/ollama"]
        workload = await rig.actuator.observe(NS, "ollama")
        assert sum(1 for p in workload.pods if p.ready) == 2
        kube.fake.update("deployments", NS, "ollama", {"spec": {"replicas": 9}})  # kubectl scale
        await until(lambda: len(rig.woken) == 2, what="a wake on someone else's scale")


async def test_a_relabeled_pod_leaves_the_target_and_a_new_selector_matches_again(
    kube: Cluster, scope: Scope
) -> None:
    seed(kube)
    async with caching(kube.api, {NS: ["ollama"]}, scope=scope) as rig:
        cache = rig.cache()

        async def names() -> list[str]:
            return [p.name for p in (await rig.actuator.observe(NS, "ollama")).pods]

        assert await names() == ["ollama-a", "ollama-b"]
        kube.fake.update("pods", NS, "ollama-a", {"metadata": {"labels": {"app": "other"}}})
        await until(
            lambda: cache.pods.get(f"{NS}/ollama-a")["metadata"]["labels"]["app"] == "other"
        )
        assert await names() == ["ollama-b"]
        kube.fake.update("pods", NS, "ollama-a", {"metadata": {"labels": {"app": "ollama"}}})
        await until(
            lambda: cache.pods.get(f"{NS}/ollama-a")["metadata"]["labels"]["app"] == "ollama"
        )
        assert await names() == ["ollama-a", "ollama-b"]
        proxy = {"matchLabels": {"app": "proxy"}}
        kube.fake.update("deployments", NS, "ollama", {"spec": {"selector": proxy}})
        await until(lambda: cache.deployment(NS, "ollama")["spec"]["selector"] == proxy)
        assert await names() == ["proxy"]


async def test_our_own_replicas_are_known_during_the_patch_and_kept_only_if_it_succeeds(
    kube: Cluster,
) -> None:
    seed(kube)
    actuator = KubeActuator(kube.api, request_timeout=2.0)
    release = kube.fake.delay("PATCH", r"/deployments/ollama/scale$")
    await actuator.observe(NS, "ollama")
    patching = asyncio.create_task(actuator.scale(NS, "ollama", 5))
    await until(lambda: kube.fake.calls("PATCH", "/scale$"), what="the PATCH held")
    assert actuator.written(NS, "ollama") == 5  # before its answer: the watch may be first
    release.set()
    await patching
    assert actuator.written(NS, "ollama") == 5
    kube.fake.fail("PATCH", r"/deployments/ollama/scale$", 403)
    with pytest.raises(Forbidden):
        await actuator.scale(NS, "ollama", 6)
    assert actuator.written(NS, "ollama") == 5


async def test_an_unsynced_cache_refuses_and_an_unknown_namespace_too(kube: Cluster) -> None:
    seed(kube)
    actuator = CachedActuator(kube.api, {NS: ["ollama"]}, request_timeout=2.0)
    with pytest.raises(KubeError, match="cache of deployments in ml not synced yet"):
        await actuator.observe(NS, "ollama")
    with pytest.raises(KubeError, match="no cache for its namespace"):
        await actuator.observe("elsewhere", "ollama")
    assert not await actuator.wait_synced(0.01)  # nothing runs its informers


@pytest.mark.parametrize(
    "namespaces", [pytest.param(1, id="one-namespace"), pytest.param(10, id="ten-namespaces")]
)
async def test_a_hundred_targets_are_served_by_three_watches_per_cache(
    kube: Cluster, namespaces: int, scope: Scope
) -> None:
    targets: dict[str, list[str]] = {}
    for i in range(100):
        ns, name = f"ns-{i % namespaces}", f"model-{i}"
        kube.fake.add_deployment(ns, name, replicas=1 + i % 3)
        kube.fake.add_pod(ns, f"{name}-0", labels={"app": name})
        targets.setdefault(ns, []).append(name)
    async with caching(kube.api, targets, scope=scope) as rig:
        before = reads(kube)
        for _ in range(3):
            workloads = await asyncio.gather(
                *(rig.actuator.observe(ns, name) for ns, names in targets.items() for name in names)
            )
        assert reads(kube) == before
    assert [w.spec_replicas for w in workloads] == [
        1 + int(name.split("-")[1]) % 3 for names in targets.values() for name in names
    ]
    assert all(len(w.pods) == 1 for w in workloads)
    kinds = ("deployments", "pods", "horizontalpodautoscalers")
    caches = 1 if scope == "cluster" else namespaces  # cluster: 3 watches in all
    assert len(rig.actuator.caches) == caches
    assert watches(kube) == dict.fromkeys(kinds, caches)
    assert sum(before.values()) == 3 * caches  # one list of each kind per cache


async def test_in_the_cluster_scope_a_change_wakes_only_the_targets_of_its_namespace(
    kube: Cluster,
) -> None:
    targets: dict[str, list[str]] = {}
    for i in range(3):
        ns = f"ns-{i}"
        seed(kube, ns, "ollama")  # the same Deployment and pod names in every namespace
        targets[ns] = ["ollama"]
    kube.fake.add_deployment("unwatched", "ollama", replicas=1)
    kube.fake.add_pod("unwatched", "ollama-x", labels={"app": "ollama"}, ready=False)
    async with caching(kube.api, targets, scope="cluster") as rig:
        assert list(rig.actuator.caches) == ["*"]
        _ready(kube, "ollama-b", True, ns="ns-1")
        await until(lambda: rig.woken, what="a wake on the pod turning ready")
        kube.fake.update("deployments", "ns-2", "ollama", {"spec": {"replicas": 7}})
        await until(lambda: len(rig.woken) == 2, what="a wake on someone else's scale")
        _ready(kube, "ollama-x", True, ns="unwatched")  # no target there
        kube.fake.update("deployments", "unwatched", "ollama", {"spec": {"replicas": 2}})
        await until(lambda: rig.cache().pods.get("unwatched/ollama-x")["status"]["conditions"])
        await until(lambda: rig.cache().deployment("unwatched", "ollama")["spec"]["replicas"] == 2)
        assert rig.woken == ["ns-1/ollama", "ns-2/ollama"]
        pods = {
            ns: [p.name for p in (await rig.actuator.observe(ns, "ollama")).pods] for ns in targets
        }
        assert pods == {ns: ["ollama-a", "ollama-b"] for ns in targets}  # none of another ns
        assert (await rig.actuator.observe("ns-2", "ollama")).spec_replicas == 7
        with pytest.raises(KubeError, match="no cache for its namespace"):
            await rig.actuator.observe("unwatched", "ollama")  # served, but not a target's
    assert watches(kube) == dict.fromkeys(("deployments", "pods", "horizontalpodautoscalers"), 1)


async def test_without_a_cluster_role_the_cluster_scope_holds_on_not_synced(
    kube: Cluster,
) -> None:
    seed(kube)
    kube.fake.fail("GET", r"^/apis/apps/v1/deployments$", 403, times=None)  # a Role only
    async with caching(kube.api, {NS: ["ollama"]}, scope="cluster", synced=False) as rig:
        await until(lambda: reads(kube)[("list", "deployments")] >= 2, what="a refused retry")
        with pytest.raises(KubeError, match="deployments in all namespaces not synced yet"):
            await rig.actuator.observe(NS, "ollama")
    assert not kube.fake.calls("GET", r"/namespaces/ml/deployments$")  # no fallback


@pytest.mark.parametrize(
    ("setting", "namespaces", "picked"),
    [
        pytest.param("auto", 1, "namespace", id="auto-one"),
        pytest.param("auto", CLUSTER_SCOPE_ABOVE, "namespace", id="auto-at-the-threshold"),
        pytest.param("auto", CLUSTER_SCOPE_ABOVE + 1, "cluster", id="auto-above"),
        pytest.param("namespace", 1000, "namespace", id="namespace-forced"),
        pytest.param("cluster", 1, "cluster", id="cluster-forced"),
    ],
)
def test_auto_watches_the_cluster_above_the_threshold(
    setting: str, namespaces: int, picked: Scope
) -> None:
    assert pick_scope(setting, namespaces) == picked
    assert watches_for(picked, namespaces) == (3 if picked == "cluster" else 3 * namespaces)


def test_the_stale_bound_outlasts_two_watch_renewals() -> None:
    # Every healthy watch is renewed (and heard) within its 60 s timeout.
    assert KUBE_STALE_AFTER >= 2 * 60.0
