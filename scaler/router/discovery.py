"""The Ollama pods from the Service's EndpointSlices: list, then watch, until cancelled.

The loop (client-go's reflector, with a re-list where it would resume):

1. List the Service's slices (label ``kubernetes.io/service-name``). The list is the
   whole truth: it replaces what was known, and gives a resourceVersion.
2. Watch from that version; each ADDED, MODIFIED or DELETED replaces or drops one slice.
3. The watch ends by design: its ``timeoutSeconds`` (5 to 10 min, drawn at random so
   two routers do not re-list together), or 410 Gone when the version has left the
   apiserver's history. Back to 1 at once. A re-list is one small request, and its
   snapshot is compared with the last one: a pod present throughout is never
   announced gone in between.
4. An error (connection refused or reset, 403, 5xx, a malformed answer, no answer
   within ``request_timeout``) is logged once, then back to 1 after 0.5 s, doubling
   up to 10 s. The delay starts again from 0.5 s once an attempt's watch has
   delivered an event or stayed open for a second. A watch that ends within a second
   with nothing delivered counts as an error, as client-go's "very short watch" does,
   so a server that drops every watch at once cannot drive a tight re-list loop.

While the apiserver is unreachable the last snapshot stands: its pods most likely
still serve, and the router learns otherwise from their own connections.

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
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio import watch
from kubernetes_asyncio.client import ApiClient, DiscoveryV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from scaler.errors import ScalerError
from scaler.kube.api_call import call_json
from scaler.kube.errors import KubeError, api_error
from scaler.router.endpoints import Endpoint, EndpointState, OnChange
from scaler.router.slices import SliceError, merge, slice_endpoints

log = logging.getLogger(__name__)

SERVICE_LABEL = "kubernetes.io/service-name"
"""The label the EndpointSlice controller puts on each slice of a Service."""
SHORT_WATCH = 1.0
"""Seconds: a watch that ends sooner, having delivered nothing, counts as an error."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """The wait before retrying after errors: ``initial`` seconds, doubling to ``maximum``."""

    initial: float = 0.5
    maximum: float = 10.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th error in a row (1 for the first)."""
        return min(self.initial * 2.0 ** min(failures - 1, 64), self.maximum)


@dataclass
class _Attempt:
    """One list and the watch after it."""

    watch_from: float | None = None
    events: int = 0

    def progressed(self, now: float) -> bool:
        """Its watch delivered something or stayed open long enough to call it working."""
        opened = self.watch_from is not None and now - self.watch_from >= SHORT_WATCH
        return self.events > 0 or opened


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
        backoff: Backoff = Backoff(),
        request_timeout: float = 10.0,
        watch_timeout: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._api = DiscoveryV1Api(api)
        self._namespace, self._port_name, self._on_change = namespace, port_name, on_change
        self._selector = f"{SERVICE_LABEL}={service}"
        self._where = f"{namespace}/{service}"
        self._backoff = backoff
        self._request_timeout, self._watch_timeout = request_timeout, watch_timeout
        self._clock, self._sleep, self._jitter = clock, sleep, jitter
        self._slices: dict[str, list[Endpoint]] = {}
        self._problems: dict[str, str] = {}
        """The last problem logged per slice name, so each is logged once."""
        self._snapshot: dict[str, Endpoint] = {}
        self.synced = False
        """True once the first list has succeeded (and ever after)."""

    async def run(self) -> None:
        """List and watch until cancelled; every failure is logged here, once."""
        failures = 0
        while True:
            attempt = _Attempt()
            error = await self._guarded(attempt)
            if attempt.progressed(self._clock()):
                failures = 0
                if error is None:
                    continue  # the watch ended as watches do: re-list at once
            failures += 1
            delay = self._backoff.delay(failures)
            self._log_failure(error, delay)
            await self._sleep(delay)

    async def _guarded(self, attempt: _Attempt) -> Exception | None:
        try:
            version = await self._list()
            attempt.watch_from = self._clock()
            await self._watch(version, attempt)
        except Exception as err:  # even a bug (say in on_change) must not end discovery
            return err
        return None

    def _log_failure(self, error: Exception | None, delay: float) -> None:
        retry = f"retrying in {delay:g} s"
        if error is None:
            log.warning(
                "watch endpointslices of %s: ended at once, no event; %s", self._where, retry
            )
        elif isinstance(error, ScalerError):  # its message names the call
            log.warning("%s; %s", error, retry)
        else:
            log.error(
                "endpointslices of %s: unexpected error; %s", self._where, retry, exc_info=error
            )

    # -- list --------------------------------------------------------------------------

    async def _list(self) -> str:
        """List the slices, make them the whole known state, return the list's version."""
        items, version = await call_json(
            f"list endpointslices of {self._where}",
            self._api.list_namespaced_endpoint_slice(
                self._namespace, label_selector=self._selector, _preload_content=False
            ),
            timeout=self._request_timeout,
            decode=_decode_list,
        )
        self._slices = {name: self._parse(name, obj) for name, obj in items.items()}
        self._problems = {k: v for k, v in self._problems.items() if k in self._slices}
        self.synced = True
        self._publish()
        return version

    # -- watch -------------------------------------------------------------------------

    async def _watch(self, version: str, attempt: _Attempt) -> None:
        """Apply the watch's events until it ends (normally or 410); raise KubeError."""
        seconds = round(self._watch_timeout * (1 + self._jitter()))
        # return_type "object": the events' objects stay JSON, as the list's items are,
        # instead of becoming generated models (costly, and one more shape to read).
        async with watch.Watch(return_type="object").stream(
            self._api.list_namespaced_endpoint_slice,
            self._namespace,
            label_selector=self._selector,
            resource_version=version,
            timeout_seconds=seconds,  # also stops the library's own silent reconnects
            _request_timeout=aiohttp.ClientTimeout(
                total=seconds + self._request_timeout, sock_connect=self._request_timeout
            ),
        ) as stream:
            while (event := await self._next_event(stream)) is not None:
                attempt.events += 1
                self._apply(event)

    async def _next_event(self, stream: watch.Watch) -> dict[str, Any] | None:
        """The next event; None when the watch has ended (its timeout, or 410 Gone)."""
        what = f"watch endpointslices of {self._where}"
        try:
            event = await anext(stream)
        except StopAsyncIteration:
            return None
        except ApiException as err:  # an ERROR event, or an error status
            if err.status == 410:
                log.debug("%s: %s; listing again", what, err.reason)
                return None
            raise api_error(what, err) from err
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise KubeError(f"{what}: {type(err).__name__}: {err}") from err
        except Exception as err:  # kubernetes-asyncio raises a bare one for a bad line
            raise KubeError(f"{what}: {err}") from err
        if not isinstance(event, dict) or not isinstance(event.get("raw_object"), dict):
            raise KubeError(f"{what}: not a watch event: {str(event)[:200]!r}")
        return event

    def _apply(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event["raw_object"]
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return  # BOOKMARK: the library keeps its version; nothing changed
        name = (obj.get("metadata") or {}).get("name")
        if not isinstance(name, str):
            raise KubeError(f"watch endpointslices of {self._where}: a {kind} with no name")
        if kind == "DELETED":
            self._slices.pop(name, None)
            self._problems.pop(name, None)
        else:
            self._slices[name] = self._parse(name, obj)
        self._publish()

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


def _decode_list(data: Any) -> tuple[dict[str, dict[str, Any]], str]:
    """An EndpointSliceList's items by name, and its resourceVersion."""
    version = data["metadata"]["resourceVersion"]
    if not isinstance(version, str) or not version:
        raise TypeError(f"metadata.resourceVersion: {version!r} is not a version")
    items = {item["metadata"]["name"]: item for item in data.get("items") or []}
    if not all(isinstance(name, str) and isinstance(i, dict) for name, i in items.items()):
        raise TypeError("items: an item without a name")
    return items, version
