"""Which HPA scales which Deployment, per namespace, listed at most once per period.

``observe`` reports an HPA that targets the Deployment, so that scaler does not fight
it. Listing a namespace's HPAs for every target on every poll was one API call per
target per second, for objects that rarely change; and the HPA controller itself only
acts every 15 s (``--horizontal-pod-autoscaler-sync-period``). So each namespace's
list is shared by all of its targets and refreshed lazily: the first lookup at least
``refresh`` seconds after the last list started lists again, and every lookup in the
namespace meanwhile gets that same list. An HPA created or deleted is therefore
noticed within ``refresh`` seconds (plus one poll).

A failed list is not kept: every lookup that was waiting for it fails with it, and
the next lookup lists again.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client import ApiClient

from scaler.kube.api_call import call_json, send

HPA_REFRESH = 15.0
"""Default seconds between two lists of a namespace's HPAs (the HPA sync period)."""

HpaTargets = Mapping[str, str]
"""Deployment name → name of the HPA scaling it (the first by name if several do)."""


@dataclass(frozen=True, slots=True)
class _Listing:
    started: float  # the clock when the list was requested
    task: asyncio.Task[HpaTargets]


class HpaCache:
    """The HPAs of each namespace, by the Deployment they scale.

    ``refresh``: seconds a namespace's list is used before the next lookup lists again
    (0: every lookup lists). ``clock``: monotonic seconds (injectable for tests).
    ``request_timeout``: seconds the list call may take.
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        request_timeout: float,
        refresh: float = HPA_REFRESH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if refresh < 0:
            raise ValueError(f"hpa refresh must be >= 0 seconds, got {refresh}")
        self._api = api_client
        self._timeout = request_timeout
        self._refresh = refresh
        self._clock = clock
        self._listings: dict[str, _Listing] = {}

    def lookup(self, namespace: str) -> asyncio.Task[HpaTargets]:
        """The namespace's HPAs: the last list if fresh, else a new list (started now).

        Returns the list's task, so that the caller can do other reads meanwhile.
        Await it through ``asyncio.shield``: other lookups share it, and one caller
        being cancelled must not cancel it for them. It raises KubeError when the
        list fails. The task always ends, within ``request_timeout``.
        """
        now = self._clock()
        listing = self._listings.get(namespace)
        if listing is None or now - listing.started >= self._refresh:
            task = asyncio.create_task(self._list(namespace), name=f"list-hpas-{namespace}")
            listing = _Listing(now, task)
            self._listings[namespace] = listing
            task.add_done_callback(functools.partial(self._done, namespace, listing))
        return listing.task

    async def _list(self, namespace: str) -> HpaTargets:
        return await call_json(
            f"list horizontalpodautoscalers in {namespace}",
            send(
                self._api,
                "GET",
                "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers",
                path_params={"namespace": namespace},
            ),
            timeout=self._timeout,
            decode=hpa_targets,
        )

    def _done(self, namespace: str, listing: _Listing, task: asyncio.Task[HpaTargets]) -> None:
        # task.exception() also marks a failure as retrieved: no "never retrieved" log
        # when no lookup was waiting for it.
        failed = task.cancelled() or task.exception() is not None
        if failed and self._listings.get(namespace) is listing:
            del self._listings[namespace]


def hpa_targets(listed: Mapping[str, Any]) -> HpaTargets:
    """The Deployments scaled by the HPAs of an autoscaling/v2 HPA list (its JSON)."""
    return hpa_targets_of(listed.get("items") or ())


def hpa_targets_of(hpas: Iterable[Mapping[str, Any]]) -> HpaTargets:
    """The Deployments scaled by ``hpas`` (autoscaling/v2 HPAs, as JSON).

    An HPA scales a Deployment when its ``scaleTargetRef`` has kind Deployment and
    the apps group (``apps/v1``), or no group at all (``v1`` or no apiVersion).
    """
    targets: dict[str, str] = {}
    for hpa in hpas:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        group = (ref.get("apiVersion") or "").rpartition("/")[0]  # "apps/v1" → "apps"
        if ref.get("kind") != "Deployment" or group not in ("apps", ""):
            continue
        name: str = (hpa.get("metadata") or {}).get("name") or ""
        deployment: str = ref.get("name") or ""
        if deployment not in targets or name < targets[deployment]:
            targets[deployment] = name
    return targets
