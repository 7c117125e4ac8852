"""Idle victims: before a scale-down, mark each pod with its load so the ReplicaSet
deletes idle pods first.

Lowering ``spec.replicas`` lets the ReplicaSet choose which pods go. Among pods equally
ready it deletes the lowest ``controller.kubernetes.io/pod-deletion-cost`` first, then
the most recently ready, then the youngest (upstream ``ActivePodsWithRanks``). Without
a cost the youngest pods go whatever they hold. So, only when a scale-down is about to
be written, each serving pod's proxy is read directly for the requests it holds
(``ollama_proxy_requests_in_flight`` plus ``ollama_proxy_queue_depth``) and that number
becomes the pod's cost. A PATCH per pod is the price, so a pod whose annotation already
holds its value is left alone, and a pod whose proxy cannot be read keeps what it has.

A failed PATCH is logged once (until a marking succeeds again) and the scale-down goes
ahead: the replica count is the policy's, the marks only choose which pods go, and a
busy pod that goes still finishes its answers (its drain, docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from scaler.kube.errors import KubeError
from scaler.kube.workload import DELETION_COST_ANNOTATION, PodAnnotator, Workload
from scaler.logs import FIELDS
from scaler.sources.base import MetricUnavailable
from scaler.sources.proxies import ProxyScraper, endpoint_urls

HELD_SERIES = ("ollama_proxy_requests_in_flight", "ollama_proxy_queue_depth")
"""What a pod's proxy holds: answers running plus requests waiting for its slots."""
PROXY_PORT = 11434
"""The proxy sidecar's port in every Ollama pod (manifests/base/ollama.yaml)."""
MAX_COST = 2**31 - 1  # the annotation is an int32

log = logging.getLogger("scaler.controller")


@dataclass(frozen=True, slots=True)
class Marked:
    """What one marking did: pods patched, pods whose load could not be read, and
    the first PATCH that failed (the others are not tried: the same cause, most likely)."""

    patched: int
    unread: int
    error: KubeError | None = None


class VictimMarker:
    """Reads each pod's load from its proxy and writes it as its deletion cost."""

    def __init__(
        self,
        scraper: ProxyScraper,
        annotator: PodAnnotator,
        *,
        port: int = PROXY_PORT,
        path: str = "/metrics",
    ) -> None:
        self._scraper = scraper
        self._annotator = annotator
        self._port = port
        self._path = path

    async def mark(self, namespace: str, workload: Workload, *, now: float) -> Marked:
        """Set each live pod's cost to what it holds, where that changes it."""
        names = [
            pod.name for pod in workload.pods if not pod.deleting and pod.name in workload.pod_ips
        ]
        loads = await asyncio.gather(*(self._held(workload.pod_ips[name], now) for name in names))
        wanted = costs_to_write(dict(zip(names, loads, strict=True)), workload.deletion_costs)
        unread = sum(1 for load in loads if load is None)
        patched = 0
        for name, cost in sorted(wanted.items()):
            try:
                await self._annotator.annotate_pod(
                    namespace, name, {DELETION_COST_ANNOTATION: cost}
                )
            except KubeError as error:
                return Marked(patched, unread, error)
            patched += 1
        return Marked(patched, unread)

    async def _held(self, ip: str, now: float) -> int | None:
        urls = endpoint_urls([ip], self._port, self._path)
        try:
            sample = await self._scraper.total(urls, HELD_SERIES, now=now)
        except MetricUnavailable:
            return None
        return min(MAX_COST, max(0, round(sample.value)))


def costs_to_write(loads: Mapping[str, int | None], current: Mapping[str, str]) -> dict[str, str]:
    """Pod name to the cost to write: only pods whose load is known and differs from
    their annotation."""
    return {
        name: str(load)
        for name, load in loads.items()
        if load is not None and current.get(name) != str(load)
    }


def report(marked: Marked, *, failed_before: bool, target: str) -> bool:
    """Log a marking's failure once, and the recovery; return whether it failed."""
    fields = {"target": target, "patched": marked.patched, "unread": marked.unread}
    if marked.error is None:
        if failed_before:
            log.info("pods marked for the scale-down again", extra={FIELDS: fields})
        return False
    if not failed_before:
        log.warning(
            "cannot mark idle pods (the ReplicaSet will pick by age): %s",
            marked.error,
            extra={FIELDS: fields},
        )
    return True
