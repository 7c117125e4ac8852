"""A list+watch cache of one kind of object, in one namespace or in all (client-go's
reflector and store).

The loop, until cancelled:

1. LIST (when the resourceVersion is unknown): the answer is the whole truth. It
   replaces the store, and ``on_change`` hears of every add, update and delete
   against what was stored before, so a re-list after a gap reports the deletes
   that happened in it.
2. WATCH from the last resourceVersion (``allowWatchBookmarks``, ``timeoutSeconds``):
   ADDED, MODIFIED and DELETED change the store; a BOOKMARK only moves the version.
3. The watch ends by design at its ``timeoutSeconds``: watch again from the last
   version, no list. A 410 Gone (the HTTP status, or an ERROR event with code 410,
   as the watch cache sends when the version has left its history) forgets the
   version: back to 1.
4. Any other failure (connection refused or reset, 403, 5xx, a malformed answer, no
   answer within ``request_timeout``) is logged once, then retried after
   ``backoff`` (client-go's reflector backs off the same way), from the last
   version if one is known. The delay starts again from the first step once an
   attempt's watch delivered an event or stayed open for ``SHORT_WATCH``; a watch
   that ends sooner with nothing delivered counts as a failure (client-go's "very
   short watch"), so a server that drops every watch cannot drive a tight loop.

While the API server cannot be reached the store stands as it was; ``heard_at``
stops moving, so ``fresh`` turns false once the caller's bound has passed.

HTTP goes through kubernetes-asyncio's ``ApiClient`` (its configuration, auth and
TLS) with ``_preload_content=False``: the objects stay JSON, never generated models.
What those answers hold, and the keys objects are stored by, is
``scaler.kube.watch_decode``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient

from scaler.errors import ScalerError
from scaler.kube.api_call import call, call_json, send, status_error
from scaler.kube.errors import KubeError, api_error
from scaler.kube.watch_decode import (
    Key,
    Object,
    WatchLines,
    decode_list,
    name_of,
    resource_version,
)

log = logging.getLogger(__name__)

OnChange = Callable[[str, Object | None, Object | None], None]
"""``(key, old, new)``: old None for an add, new None for a delete."""

SHORT_WATCH = 1.0
"""Seconds: a watch that ends sooner, having delivered nothing, counts as a failure."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """The wait before retrying after failures: ``initial`` seconds, doubling to ``maximum``."""

    initial: float = 0.1
    maximum: float = 10.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1 for the first)."""
        return min(self.initial * 2.0 ** min(failures - 1, 64), self.maximum)


@dataclass
class _Attempt:
    """One try: a list if needed, then one watch."""

    watch_from: float | None = None
    events: int = 0

    def progressed(self, now: float) -> bool:
        """Its watch delivered something or stayed open long enough to call it working."""
        opened = self.watch_from is not None and now - self.watch_from >= SHORT_WATCH
        return self.events > 0 or opened


class Informer:
    """The objects at ``path`` (a namespaced collection, e.g.
    ``/apis/apps/v1/namespaces/ml/deployments``), kept current by list and watch.

    ``on_change(key, old, new)`` is called before the store takes each change (an
    exception in it is logged and the change is offered again after the backoff);
    ``on_settled()`` after each list and each applied event, once the store holds
    them all (a caller that needs a consistent whole, such as the router's
    snapshot, acts there). ``what`` names the collection in logs and errors.
    ``watch_timeout``: seconds each watch asks for, times ``1 + jitter()``
    (``jitter`` in [0, 1)). ``clock``, ``sleep`` and ``jitter`` are injectable.
    ``key``: what the store, ``get`` and ``on_change`` name an object by (its name).
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        path: str,
        label_selector: str | None = None,
        on_change: OnChange | None = None,
        on_settled: Callable[[], None] | None = None,
        what: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = lambda: 0.0,
        watch_timeout: float = 60.0,
        request_timeout: float = 10.0,
        backoff: Backoff = Backoff(),
        key: Key = name_of,
    ) -> None:
        self._api, self._path, self._selector, self._key = api, path, label_selector, key
        self._on_change, self._on_settled = on_change, on_settled
        self._what = what or path
        self._clock, self._sleep, self._jitter = clock, sleep, jitter
        self._watch_timeout, self._request_timeout = watch_timeout, request_timeout
        self._backoff = backoff
        self._store: dict[str, Object] = {}
        self.version: str | None = None
        """The resourceVersion the next watch starts from; None: list first."""
        self.synced = False
        """True once the first list has succeeded (and ever after)."""
        self.heard_at: float | None = None
        """Clock time of the last list, watch opened, event or bookmark."""

    # -- the read API --------------------------------------------------------------

    def fresh(self, now: float, bound: float) -> bool:
        """Synced, and heard from the API server within ``bound`` seconds of ``now``."""
        return self.synced and self.heard_at is not None and now - self.heard_at <= bound

    def get(self, name: str) -> Object | None:
        return self._store.get(name)

    def items(self) -> Iterable[Object]:
        """The stored objects (a copy of the list: safe to hold across awaits)."""
        return list(self._store.values())

    # -- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until cancelled; every failure is logged here, once."""
        failures = 0
        while True:
            attempt = _Attempt()
            error = await self._guarded(attempt)
            if attempt.progressed(self._clock()):
                failures = 0
                if error is None:
                    continue  # the watch ended as watches do (or 410): go on at once
            failures += 1
            delay = self._backoff.delay(failures)
            self._log_failure(error, delay)
            await self._sleep(delay)

    async def _guarded(self, attempt: _Attempt) -> Exception | None:
        try:
            if self.version is None:
                await self._list()
            attempt.watch_from = self._clock()
            await self._watch(attempt)
        except Exception as err:  # even a bug (say in on_change) must not end the informer
            return err
        return None

    def _log_failure(self, error: Exception | None, delay: float) -> None:
        retry = f"retrying in {delay:g} s"
        if error is None:
            log.warning("watch %s: ended at once, no event; %s", self._what, retry)
        elif isinstance(error, ScalerError):  # its message names the call
            log.warning("%s; %s", error, retry)
        else:
            log.error("%s: unexpected error; %s", self._what, retry, exc_info=error)

    def _request(self, query: list[tuple[str, str]], timeout: Any) -> Awaitable[Any]:
        if self._selector:
            query = [("labelSelector", self._selector), *query]
        return send(self._api, "GET", self._path, query=query, request_timeout=timeout)

    # -- list ----------------------------------------------------------------------

    async def _list(self) -> None:
        """List, make the answer the whole store (telling ``on_change``), keep its version."""
        items, version = await call_json(
            f"list {self._what}",
            self._request([], self._request_timeout),
            timeout=self._request_timeout,
            decode=functools.partial(decode_list, self._key),
        )
        for name in [n for n in self._store if n not in items]:
            self._change(name, None)
        for name, obj in items.items():
            self._change(name, obj)
        self._settled()  # before the version is kept: if it fails, the next try lists again
        self.version, self.synced, self.heard_at = version, True, self._clock()

    def _change(self, name: str, new: Object | None) -> None:
        old = self._store.get(name)
        if old is None and new is None:
            return
        if old is not None and new is not None and resource_version(old) == resource_version(new):
            return  # the same write seen twice (a list after the watch had it)
        if self._on_change is not None:
            self._on_change(name, old, new)
        if new is None:
            del self._store[name]
        else:
            self._store[name] = new

    def _settled(self) -> None:
        if self._on_settled is not None:
            self._on_settled()

    # -- watch ---------------------------------------------------------------------

    async def _watch(self, attempt: _Attempt) -> None:
        """Apply one watch's events until it ends (by design, or 410); raise KubeError."""
        what = f"watch {self._what}"
        seconds = max(1, round(self._watch_timeout * (1 + self._jitter())))
        query = [
            ("watch", "true"),
            ("resourceVersion", self.version or ""),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(seconds)),
        ]
        timeout = aiohttp.ClientTimeout(
            total=seconds + self._request_timeout, sock_connect=self._request_timeout
        )
        response = await call(what, self._request(query, timeout), timeout=self._request_timeout)
        try:
            async with asyncio.timeout(seconds + self._request_timeout), response:
                lines = WatchLines(response.content)
                if await self._opened(what, response):
                    while (line := await lines.next()) is not None and self._apply(what, line):
                        attempt.events += 1
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise KubeError(f"{what}: {type(err).__name__}: {err}") from err

    async def _opened(self, what: str, response: Any) -> bool:
        """True for a watch stream; False for 410 (list again); raise for another status."""
        if response.status == 410:
            log.debug("%s: 410 Gone; listing again", what)
            self.version = None
            return False
        if not 200 <= response.status <= 299:
            error = status_error(response, await response.read())
            raise api_error(what, error) from error
        self.heard_at = self._clock()
        return True

    def _apply(self, what: str, line: bytes) -> bool:
        """Apply one event line; False when the stream said 410 (list again)."""
        event = json.loads(line)
        obj = event.get("object") if isinstance(event, dict) else None
        kind = event.get("type") if isinstance(obj, dict) else None
        if not isinstance(obj, dict):
            raise KubeError(f"{what}: not a watch event: {line[:200]!r}")
        if kind == "ERROR":
            return self._error(what, obj)
        version = resource_version(obj)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            name = self._key(obj)
            if not isinstance(name, str):
                raise KubeError(f"{what}: a {kind} with no name")
            self._change(name, None if kind == "DELETED" else obj)
            self._settled()
        elif kind != "BOOKMARK":
            raise KubeError(f"{what}: unknown event type {str(kind)[:40]!r}")
        self.version, self.heard_at = version, self._clock()
        return True

    def _error(self, what: str, status: Object) -> bool:
        code = status.get("code")
        if code == 410:
            log.debug("%s: %s; listing again", what, status.get("message"))
            self.version = None
            return False
        message = str(status.get("message") or status.get("reason") or "no reason given")
        raise KubeError(f"{what}: {message[:200]} ({code})", status=code)
