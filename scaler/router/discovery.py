"""The Ollama pods from the Service's EndpointSlices: an informer, until cancelled.

The list and watch is ``scaler.kube.informer.Informer`` (client-go's reflector):
the slices labelled ``kubernetes.io/service-name`` are listed, then watched from the
list's resourceVersion; a watch that ends by design (its ``timeoutSeconds``, 5 to 10
min, drawn at random so two routers do not renew together) is resumed from the last
version, and a 410 Gone lists again, its snapshot compared with the last one: a pod
present throughout is never announced gone in between. An error (connection refused
or reset, 403, 5xx, a malformed answer, no answer within ``request_timeout``) is
logged once, then retried after 0.5 s, doubling up to 10 s; a watch that ends within
a second with nothing delivered counts as an error.

Here each slice is mapped to its endpoints as it changes, and once the informer has
applied a list or an event, the slices are merged into one snapshot for
``on_change`` when it differs from the last one delivered. While the apiserver is
unreachable the last snapshot stands: its pods most likely still serve, and the
router learns otherwise from their own connections.

The mapping of each slice to endpoints, and of the slices to one snapshot, is in
``scaler.router.slices``; docs/router-discovery.md says when the EndpointSlice
controller sets each condition and what the router does then.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from scaler.kube.informer import Backoff, Informer
from scaler.router.endpoints import Endpoint, EndpointState, OnChange
from scaler.router.slices import SliceError, merge, slice_endpoints

if TYPE_CHECKING:  # at run time scaler.kube loads ApiClient without the generated classes
    from kubernetes_asyncio.client import ApiClient

log = logging.getLogger(__name__)

SERVICE_LABEL = "kubernetes.io/service-name"
"""The label the EndpointSlice controller puts on each slice of a Service."""
BACKOFF = Backoff(initial=0.5, maximum=10.0)
"""The wait after the n-th error in a row: 0.5 s doubling to 10 s."""


class EndpointSliceWatch:
    """Keeps ``on_change`` told of the pods behind one Service (one per router).

    ``port_name``: the slice port to use; None takes a slice's only port.
    ``request_timeout``: seconds for the list, and added to the watch's own timeout.
    ``watch_timeout``: the shortest watch ``timeoutSeconds``; each watch asks for
    between one and two times it. ``clock``, ``sleep`` and ``jitter`` (uniform in
    [0, 1)) are injectable for tests.
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        namespace: str,
        service: str,
        port_name: str | None,
        on_change: OnChange,
        backoff: Backoff = BACKOFF,
        request_timeout: float = 10.0,
        watch_timeout: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._port_name, self._on_change = port_name, on_change
        self._where = f"{namespace}/{service}"
        self._slices: dict[str, list[Endpoint]] = {}
        self._problems: dict[str, str] = {}
        """The last problem logged per slice name, so each is logged once."""
        self._snapshot: dict[str, Endpoint] = {}
        self._informer = Informer(
            api,
            path=f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            label_selector=f"{SERVICE_LABEL}={service}",
            on_change=self._changed,
            on_settled=self._publish,
            what=f"endpointslices of {self._where}",
            clock=clock,
            sleep=sleep,
            jitter=jitter,
            watch_timeout=watch_timeout,
            request_timeout=request_timeout,
            backoff=backoff,
        )

    @property
    def synced(self) -> bool:
        """True once the first list has succeeded (and ever after)."""
        return self._informer.synced

    async def run(self) -> None:
        """List and watch until cancelled; every failure is logged, once."""
        await self._informer.run()

    def _changed(
        self, name: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> None:
        if new is None:
            self._slices.pop(name, None)
            self._problems.pop(name, None)
        else:
            self._slices[name] = self._parse(name, new)

    # -- state ---------------------------------------------------------------------------

    def _parse(self, name: str, obj: Mapping[str, Any]) -> list[Endpoint]:
        try:
            endpoints = slice_endpoints(obj, self._port_name)
        except SliceError as err:
            if self._problems.get(name) != str(err):
                log.error("%s; its endpoints are left out", err)
                self._problems[name] = str(err)
            return []
        self._problems.pop(name, None)
        return endpoints

    def _publish(self) -> None:
        snapshot = merge(self._slices)
        if snapshot == self._snapshot:
            return
        counts = {state: 0 for state in EndpointState}
        for endpoint in snapshot.values():
            counts[endpoint.state] += 1
        log.info(
            "pods of %s: %s",
            self._where,
            ", ".join(f"{n} {state.value}" for state, n in counts.items()),
        )
        self._on_change(snapshot)
        self._snapshot = snapshot  # only once delivered: a failed call is made again
