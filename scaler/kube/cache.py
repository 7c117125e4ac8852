"""The controller's watch-fed caches: what ``observe`` reads instead of the API server.

Per namespace that a target names, one ``WatchCache`` (``scaler.kube.watched``): three
informers (list once, then watch) of its Deployments, its pods and its HPAs; or, in the
cluster scope (``pick_scope``: targets in more than ``CLUSTER_SCOPE_ABOVE`` namespaces,
or ``watchScope: cluster``), one ``WatchCache`` of all namespaces serving every target.
So a poll costs the API server nothing; what it still receives is three watches per
cache (each renewed about once a minute) and the writes (scale PATCH, Events, the
Lease, pod deletion costs), as the HPA controller's informers do.

A cache that has not finished its first list, or has not heard from the API server for
``KUBE_STALE_AFTER`` seconds, is no evidence: ``observe`` raises KubeError and the
target holds, exactly as when the Deployment cannot be read. Which Deployments are
NotFound, and which changes wake a target between polls: ``scaler.kube.watched``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from kubernetes_asyncio.client import ApiClient

from scaler.kube.actuator import KubeActuator
from scaler.kube.errors import KubeError
from scaler.kube.observed import deployment_view, require_selector, workload_of
from scaler.kube.watched import WatchCache
from scaler.kube.workload import Workload

KUBE_STALE_AFTER = 150.0
"""Seconds without word from the API server after which a cache is stale: 2.5 times the
60 s watch timeout, since every healthy watch is renewed (and heard) within 60 s."""
WATCH_TIMEOUT = 60.0
"""Seconds each watch asks the API server for before it is renewed."""

Scope = Literal["namespace", "cluster"]
CLUSTER_SCOPE_ABOVE = 10
"""With ``watchScope: auto``, targets in more namespaces than this are watched
cluster-wide: 3 watches in all instead of 3 per namespace (1,000 namespaces were 3,000
open watches, 56 % of a core and 163 requests/s of renewals). Up to 10 the namespaced
watches stay: they need only a Role per namespace, and carry no other namespace's pods."""
WATCHES_PER_CACHE = 3
"""Deployments, pods, HPAs: each watch holds one API connection while it runs."""
ALL_NAMESPACES = "*"
"""The key of the one cache in ``CachedActuator.caches`` in the cluster scope (no
namespace can be named so)."""


def pick_scope(setting: str, namespaces: int) -> Scope:
    """The scope in force for ``watchScope`` ``setting`` (auto, namespace or cluster)
    and targets in ``namespaces`` namespaces."""
    if setting == "auto":
        return "cluster" if namespaces > CLUSTER_SCOPE_ABOVE else "namespace"
    return "cluster" if setting == "cluster" else "namespace"


def watches_for(scope: Scope, namespaces: int) -> int:
    """Watches (each one open API connection) the caches hold in ``scope``."""
    return WATCHES_PER_CACHE * (1 if scope == "cluster" else namespaces)


class CachedActuator(KubeActuator):
    """``KubeActuator`` whose ``observe`` reads the caches instead of the API server.

    ``targets``: namespace → the Deployments targets name there. ``scope``
    ``namespace``: one ``WatchCache`` per namespace (``caches``, by namespace);
    ``cluster``: one for all (``caches[ALL_NAMESPACES]``). The owner runs them. Writes
    (scale, Events, pod annotations) go to the API server as ``KubeActuator``'s do.
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
        scope: Scope = "namespace",
    ) -> None:
        super().__init__(api_client, request_timeout=request_timeout, instance=instance)
        pairs = {ns: [(ns, name) for name in names] for ns, names in targets.items()}
        if scope == "cluster":
            pairs = {ALL_NAMESPACES: [pair for named in pairs.values() for pair in named]}
        self.caches = {
            key: WatchCache(
                api_client,
                None if key == ALL_NAMESPACES else key,
                targets=named,
                written=self.written,
                clock=clock,
                stale_after=stale_after,
                request_timeout=request_timeout,
                watch_timeout=watch_timeout,
            )
            for key, named in pairs.items()
        }
        self._cache_of = {ns: self.caches.get(ns) or self.caches[ALL_NAMESPACES] for ns in targets}

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
        cache = self._cache_of.get(namespace)
        if cache is None:
            raise KubeError(f"deployment {namespace}/{deployment}: no cache for its namespace")
        cache.check()
        obj = cache.deployment(namespace, deployment)
        what = f"cached deployment {namespace}/{deployment}"
        try:
            found = deployment_view(obj)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise KubeError(f"{what}: malformed: {type(err).__name__}: {err}") from err
        require_selector(found, namespace, deployment)
        pods = cache.pods_of(namespace, deployment, obj)
        self._saw(namespace, deployment, found)
        return workload_of(
            found,
            pods,
            conflicting_hpa=cache.hpa_targets(namespace).get(deployment),
            container=self._container,
            what=f"cached pods of deployment {namespace}/{deployment}",
        )
