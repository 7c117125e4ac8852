"""The controller's watch-fed caches: what ``observe`` reads instead of the API server.

Per namespace that a target names, one ``NamespaceCache``: three informers
(``scaler.kube.informer``: list once, then watch) of its Deployments, its pods and its
HPAs. The pods are not filtered server-side: one watch serves every target in the
namespace, and each target's ``spec.selector`` is applied here, client-side, on its
cached Deployment. So a poll costs the API server nothing; what it still receives is
three watches per namespace (each renewed about once a minute) and the writes (scale
PATCH, Events, the Lease, pod deletion costs), as the HPA controller's informers do.

A cache that has not finished its first list, or has not heard from the API server for
``KUBE_STALE_AFTER`` seconds, is no evidence: ``observe`` raises KubeError and the
target holds, exactly as when the Deployment cannot be read. A Deployment that the
(synced, fresh) cache does not hold raises NotFound, as a GET's 404 does.

Changes wake a target between polls (``on_wake(deployment)``, see
``scaler.kube.changes``): one of its pods turning ready, or its Deployment changed by
someone other than our own last scale PATCH. The first list of a cache wakes nothing:
every target is due at start anyway.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from kubernetes_asyncio.client import ApiClient

from scaler.kube.actuator import KubeActuator
from scaler.kube.changes import changed_by_others, turned_ready
from scaler.kube.errors import KubeError, NotFound
from scaler.kube.hpas import HpaTargets, hpa_targets_of
from scaler.kube.informer import Informer, Object
from scaler.kube.observed import deployment_view, workload_of
from scaler.kube.selector import selects
from scaler.kube.workload import Workload

KUBE_STALE_AFTER = 150.0
"""Seconds without word from the API server after which a cache is stale: 2.5 times the
60 s watch timeout, since every healthy watch is renewed (and heard) within 60 s."""
WATCH_TIMEOUT = 60.0
"""Seconds each watch asks the API server for before it is renewed."""

Wake = Callable[[str], None]


class NamespaceCache:
    """The Deployments, pods and HPAs of ``namespace``, kept by three informers.

    ``targets``: the Deployments of this namespace that targets name (only their
    changes wake). ``written(deployment)``: the replicas of our own last scale PATCH
    of it (None if none), so that it coming back through the watch wakes nothing.
    ``on_wake(deployment)``: set by the owner, called on a change worth deciding on.
    ``clock``: monotonic seconds, shared with the informers (``heard_at``).
    """

    def __init__(
        self,
        api: ApiClient,
        namespace: str,
        *,
        targets: Iterable[str],
        written: Callable[[str], int | None],
        clock: Callable[[], float] = time.monotonic,
        stale_after: float = KUBE_STALE_AFTER,
        request_timeout: float = 10.0,
        watch_timeout: float = WATCH_TIMEOUT,
    ) -> None:
        self.namespace = namespace
        self.on_wake: Wake | None = None
        self._targets = frozenset(targets)
        self._in_order = sorted(self._targets)  # wakes in a stable order
        self._written = written
        self._clock = clock
        self._stale_after = stale_after
        # Per target Deployment: its pods by name (kept current as pods change) and,
        # until the next change, that as a list sorted by name (a LIST's order).
        self._matched: dict[str, dict[str, Object]] = {}
        self._sorted: dict[str, list[Object]] = {}
        self.synced = asyncio.Event()
        """Set once all three informers have listed (the owner may wait for it)."""
        self._listed: set[str] = set()

        def informer(path: str, what: str, on_change: Any) -> Informer:
            return Informer(
                api,
                path=path,
                on_change=on_change,
                on_settled=functools.partial(self._settled, what),
                what=f"{what} in {namespace}",
                clock=clock,
                watch_timeout=watch_timeout,
                request_timeout=request_timeout,
            )

        ns = f"namespaces/{namespace}"
        self.deployments = informer(f"/apis/apps/v1/{ns}/deployments", "deployments", self._dep)
        self.pods = informer(f"/api/v1/{ns}/pods", "pods", self._pod)
        self.hpas = informer(
            f"/apis/autoscaling/v2/{ns}/horizontalpodautoscalers", "horizontalpodautoscalers", None
        )

    def runs(self) -> dict[str, Coroutine[Any, Any, None]]:
        """The informers' loops by task name, for the owner to run, cancel and await."""
        kinds = {"deployments": self.deployments, "pods": self.pods, "hpas": self.hpas}
        return {f"watch-{kind}-{self.namespace}": i.run() for kind, i in kinds.items()}

    def _settled(self, kind: str) -> None:
        # Called once a list (or a later event) is in the store: that kind has listed.
        self._listed.add(kind)
        if len(self._listed) == 3:
            self.synced.set()

    def check(self) -> None:
        """Raise KubeError unless all three informers are synced and fresh."""
        now = self._clock()
        for kind, informer in (("deployments", self.deployments), ("pods", self.pods)):
            self._check(kind, informer, now)
        self._check("horizontalpodautoscalers", self.hpas, now)

    def _check(self, kind: str, informer: Informer, now: float) -> None:
        where = f"cache of {kind} in {self.namespace}"
        if not informer.synced:
            raise KubeError(f"{where} not synced yet (its first list has not succeeded)")
        if not informer.fresh(now, self._stale_after):
            silent = now - (informer.heard_at or now)
            raise KubeError(
                f"{where} stale: nothing heard from the API server for {silent:.0f} s "
                f"(bound {self._stale_after:g} s)"
            )

    def deployment(self, name: str) -> Object:
        """The cached Deployment ``name``; NotFound if the cache does not hold it."""
        found = self.deployments.get(name)
        if found is None:
            raise NotFound(f"deployment {self.namespace}/{name} not found (watch cache)")
        return found

    def pods_of(self, name: str, deployment: Mapping[str, Any]) -> list[Object]:
        """The cached pods that ``deployment``'s ``spec.selector`` selects, by name.

        Matched once per Deployment (again when it changes); after that each pod change
        updates the match, so a poll filters nothing.
        """
        listed = self._sorted.get(name)
        if listed is None:
            matched = self._matched.get(name)
            if matched is None:
                selector = (deployment.get("spec") or {}).get("selector")
                matched = {
                    pod["metadata"]["name"]: pod
                    for pod in self.pods.items()
                    if selects(selector, pod["metadata"].get("labels"))
                }
                self._matched[name] = matched
            listed = self._sorted[name] = [matched[pod] for pod in sorted(matched)]
        return listed

    def hpa_targets(self) -> HpaTargets:
        """Deployment name → the HPA scaling it, from the cached HPAs."""
        return hpa_targets_of(self.hpas.items())

    def _dep(self, name: str, old: Object | None, new: Object | None) -> None:
        self._matched.pop(name, None)  # its selector may have changed: match again
        self._sorted.pop(name, None)
        if name in self._targets and changed_by_others(old, new, self._written(name)):
            self._wake(self.deployments, name)

    def _pod(self, name: str, old: Object | None, new: Object | None) -> None:
        ready = turned_ready(old, new)
        labels = (new.get("metadata") or {}).get("labels") if new is not None else None
        for target in self._in_order:
            deployment = self.deployments.get(target)
            selector = (deployment.get("spec") or {}).get("selector") if deployment else None
            hit = new is not None and _selects(selector, labels)
            matched = self._matched.get(target)
            if matched is not None and (hit or name in matched):
                if new is not None and hit:
                    matched[name] = new
                else:
                    del matched[name]
                self._sorted.pop(target, None)
            if hit and ready:
                self._wake(self.pods, target)

    def _wake(self, informer: Informer, deployment: str) -> None:
        # A first list reports every object as added: nothing changed, nothing to wake.
        if informer.synced and self.on_wake is not None:
            self.on_wake(deployment)


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    # An empty selector selects nothing here (observe refuses it), and one that
    # cannot be read neither: observe reports it; a pod change must not fail on it.
    try:
        return bool(selector) and selects(selector, labels)
    except ValueError:
        return False


class CachedActuator(KubeActuator):
    """``KubeActuator`` whose ``observe`` reads the caches instead of the API server.

    ``targets``: namespace → the Deployments targets name there; one
    ``NamespaceCache`` each (``caches``), which the owner runs. Writes (scale,
    Events, pod annotations) go to the API server as ``KubeActuator``'s do.
    """

    def __init__(
        self,
        api_client: ApiClient,
        targets: Mapping[str, Iterable[str]],
        *,
        request_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        stale_after: float = KUBE_STALE_AFTER,
        watch_timeout: float = WATCH_TIMEOUT,
        instance: str | None = None,
    ) -> None:
        super().__init__(api_client, request_timeout=request_timeout, instance=instance)
        self.caches = {
            namespace: NamespaceCache(
                api_client,
                namespace,
                targets=names,
                written=functools.partial(self.written, namespace),
                clock=clock,
                stale_after=stale_after,
                request_timeout=request_timeout,
                watch_timeout=watch_timeout,
            )
            for namespace, names in targets.items()
        }

    async def wait_synced(self, bound: float) -> bool:
        """Wait until every cache has listed, at most ``bound`` seconds; True if they
        have. A first decision before would only hold every target on "not synced"
        (client-go's controllers wait in ``WaitForCacheSync`` the same way)."""
        try:
            async with asyncio.timeout(bound):
                await asyncio.gather(*(cache.synced.wait() for cache in self.caches.values()))
        except TimeoutError:
            return False
        return True

    async def observe(self, namespace: str, deployment: str) -> Workload:
        """The Deployment's replicas, pods, annotations and any HPA targeting it, from
        the caches: no API call. KubeError when the namespace's cache is not synced or
        stale, NotFound when it holds no such Deployment."""
        cache = self.caches.get(namespace)
        if cache is None:
            raise KubeError(f"deployment {namespace}/{deployment}: no cache for its namespace")
        cache.check()
        obj = cache.deployment(deployment)
        what = f"cached deployment {namespace}/{deployment}"
        try:
            found = deployment_view(obj)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise KubeError(f"{what}: malformed: {type(err).__name__}: {err}") from err
        if not found.selector:  # an empty selector would match every pod in the namespace
            raise KubeError(f"deployment {namespace}/{deployment}: its spec.selector is empty")
        pods = cache.pods_of(deployment, obj)
        self._saw(namespace, deployment, found)
        return workload_of(
            found,
            pods,
            conflicting_hpa=cache.hpa_targets().get(deployment),
            container=self._container,
            what=f"cached pods of deployment {namespace}/{deployment}",
        )
