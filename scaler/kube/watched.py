"""One watch-fed store of the Deployments, pods and HPAs the targets read, in either scope.

``WatchCache`` runs three informers (``scaler.kube.informer``: list once, then watch):
of one namespace (``namespace="ml"``: ``/apis/apps/v1/namespaces/ml/deployments``, ...),
or of every namespace (``namespace=None``: ``/apis/apps/v1/deployments``, ``/api/v1/pods``,
``/apis/autoscaling/v2/horizontalpodautoscalers``, which need a ClusterRole). The logic
is the same in both: objects are keyed ``namespace/name`` (client-go's
``MetaNamespaceKeyFunc``), pods and HPAs are indexed by namespace as they change, and a
change is routed to the targets of its own namespace only.

The pods are not filtered server-side: one watch serves every target it covers, and each
target's ``spec.selector`` is applied here, client-side, on its cached Deployment.

A cache that has not finished its first list, or has not heard from the API server for
``stale_after`` seconds, is no evidence: ``check`` raises KubeError. A Deployment that
the (synced, fresh) cache does not hold raises NotFound, as a GET's 404 does.

Changes wake a target between polls (``on_wake("namespace/deployment")``, see
``scaler.kube.changes``): one of its pods turning ready, or its Deployment changed by
someone other than our own last scale PATCH. The first list wakes nothing: every target
is due at start anyway.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from kubernetes_asyncio.client import ApiClient

from scaler.kube.changes import changed_by_others, turned_ready
from scaler.kube.errors import KubeError, NotFound
from scaler.kube.hpas import HpaTargets, hpa_targets_of
from scaler.kube.informer import Informer, OnChange
from scaler.kube.selector import selects
from scaler.kube.watch_decode import Object, namespaced_name_of

Wake = Callable[[str], None]
"""Called with a target's key, ``namespace/deployment``."""
KINDS = ("deployments", "pods", "horizontalpodautoscalers")


class WatchCache:
    """The Deployments, pods and HPAs of ``namespace`` (None: of all namespaces).

    ``targets``: the (namespace, Deployment) pairs that targets name here (only their
    changes wake). ``written(namespace, deployment)``: the replicas of our own last
    scale PATCH of it (None if none), so that it coming back through the watch wakes
    nothing. ``on_wake(key)``: set by the owner, called on a change worth deciding on.
    ``clock``: monotonic seconds, shared with the informers (``heard_at``).
    """

    def __init__(
        self,
        api: ApiClient,
        namespace: str | None,
        *,
        targets: Iterable[tuple[str, str]],
        written: Callable[[str, str], int | None],
        clock: Callable[[], float],
        stale_after: float,
        request_timeout: float,
        watch_timeout: float,
    ) -> None:
        self.namespace = namespace
        self.scope = "all namespaces" if namespace is None else namespace
        self.on_wake: Wake | None = None
        self._targets: dict[str, list[str]] = {}  # namespace → its target Deployments
        for ns, name in sorted(set(targets)):  # wakes in a stable order
            self._targets.setdefault(ns, []).append(name)
        self._written, self._clock, self._stale_after = written, clock, stale_after
        # Per namespace: its pods and HPAs by name, kept as they change (a change is
        # looked at in its namespace only, never against the whole cluster).
        self._pods_in: dict[str, dict[str, Object]] = {}
        self._hpas_in: dict[str, dict[str, Object]] = {}
        # Per target key: its pods by name (kept current as pods change) and, until the
        # next change, that as a list sorted by name (a LIST's order).
        self._matched: dict[str, dict[str, Object]] = {}
        self._sorted: dict[str, list[Object]] = {}
        self.synced = asyncio.Event()
        """Set once all three informers have listed (the owner may wait for it)."""
        self._listed: set[str] = set()

        def informer(path: str, kind: str, on_change: OnChange) -> Informer:
            return Informer(
                api,
                path=path,
                on_change=on_change,
                on_settled=functools.partial(self._settled, kind),
                what=f"{kind} in {self.scope}",
                clock=clock,
                watch_timeout=watch_timeout,
                request_timeout=request_timeout,
                key=namespaced_name_of,
            )

        ns = "" if namespace is None else f"namespaces/{namespace}/"
        self.deployments = informer(f"/apis/apps/v1/{ns}deployments", KINDS[0], self._dep)
        self.pods = informer(f"/api/v1/{ns}pods", KINDS[1], self._pod)
        self.hpas = informer(
            f"/apis/autoscaling/v2/{ns}horizontalpodautoscalers",
            KINDS[2],
            self._hpa,
        )

    def runs(self) -> dict[str, Coroutine[Any, Any, None]]:
        """The informers' loops by task name, for the owner to run, cancel and await."""
        where = self.namespace or "all-namespaces"
        kinds = {"deployments": self.deployments, "pods": self.pods, "hpas": self.hpas}
        return {f"watch-{kind}-{where}": i.run() for kind, i in kinds.items()}

    def _settled(self, kind: str) -> None:
        # Called once a list (or a later event) is in the store: that kind has listed.
        self._listed.add(kind)
        if len(self._listed) == len(KINDS):
            self.synced.set()

    def check(self) -> None:
        """Raise KubeError unless all three informers are synced and fresh."""
        now = self._clock()
        for kind, informer in zip(KINDS, (self.deployments, self.pods, self.hpas), strict=True):
            where = f"cache of {kind} in {self.scope}"
            if not informer.synced:
                raise KubeError(f"{where} not synced yet (its first list has not succeeded)")
            if not informer.fresh(now, self._stale_after):
                silent = now - (informer.heard_at or now)
                raise KubeError(
                    f"{where} stale: nothing heard from the API server for {silent:.0f} s "
                    f"(bound {self._stale_after:g} s)"
                )

    def deployment(self, namespace: str, name: str) -> Object:
        """The cached Deployment; NotFound if the cache does not hold it."""
        found = self.deployments.get(f"{namespace}/{name}")
        if found is None:
            raise NotFound(f"deployment {namespace}/{name} not found (watch cache)")
        return found

    def pods_of(self, namespace: str, name: str, deployment: Mapping[str, Any]) -> list[Object]:
        """The cached pods of ``namespace`` that ``deployment``'s ``spec.selector``
        selects, by name. Matched once per Deployment (again when it changes); after
        that each pod change updates the match, so a poll filters nothing."""
        key = f"{namespace}/{name}"
        listed = self._sorted.get(key)
        if listed is None:
            matched = self._matched.get(key)
            if matched is None:
                selector = (deployment.get("spec") or {}).get("selector")
                matched = {
                    pod_name: pod
                    for pod_name, pod in self._pods_in.get(namespace, {}).items()
                    if selects(selector, pod["metadata"].get("labels"))
                }
                self._matched[key] = matched
            listed = self._sorted[key] = [matched[pod] for pod in sorted(matched)]
        return listed

    def hpa_targets(self, namespace: str) -> HpaTargets:
        """Deployment name → the HPA scaling it, from the cached HPAs of ``namespace``."""
        return hpa_targets_of(self._hpas_in.get(namespace, {}).values())

    def _dep(self, key: str, old: Object | None, new: Object | None) -> None:
        self._matched.pop(key, None)  # its selector may have changed: match again
        self._sorted.pop(key, None)
        namespace, _, name = key.partition("/")
        targeted = name in self._targets.get(namespace, ())
        if targeted and changed_by_others(old, new, self._written(namespace, name)):
            self._wake(self.deployments, key)

    def _hpa(self, key: str, old: Object | None, new: Object | None) -> None:
        _index(self._hpas_in, key, old, new)

    def _pod(self, key: str, old: Object | None, new: Object | None) -> None:
        namespace, name = _index(self._pods_in, key, old, new)
        ready = turned_ready(old, new)
        labels = (new.get("metadata") or {}).get("labels") if new is not None else None
        for target in self._targets.get(namespace, ()):
            target_key = f"{namespace}/{target}"
            deployment = self.deployments.get(target_key)
            selector = (deployment.get("spec") or {}).get("selector") if deployment else None
            hit = new is not None and _selects(selector, labels)
            matched = self._matched.get(target_key)
            if matched is not None and (hit or name in matched):
                if new is not None and hit:
                    matched[name] = new
                else:
                    del matched[name]
                self._sorted.pop(target_key, None)
            if hit and ready:
                self._wake(self.pods, target_key)

    def _wake(self, informer: Informer, key: str) -> None:
        # A first list reports every object as added: nothing changed, nothing to wake.
        if informer.synced and self.on_wake is not None:
            self.on_wake(key)


def _index(
    by_namespace: dict[str, dict[str, Object]], key: str, old: Object | None, new: Object | None
) -> tuple[str, str]:
    """Keep ``by_namespace`` (namespace → name → object) as the store changes."""
    namespace, _, name = key.partition("/")
    if new is None:
        by_namespace.get(namespace, {}).pop(name, None)
    else:
        by_namespace.setdefault(namespace, {})[name] = new
    return namespace, name


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    # An empty selector selects nothing here (observe refuses it), and one that
    # cannot be read neither: observe reports it; a pod change must not fail on it.
    try:
        return bool(selector) and selects(selector, labels)
    except ValueError:
        return False
