"""Leader election through a coordination.k8s.io/v1 Lease, as client-go's leaderelection.

Several ``scaler run`` replicas may run; only the one holding the Lease scales.

Expiry is judged on the candidate's OWN monotonic clock, never by comparing the
Lease's ``renewTime`` with local wall time (client-go's ``observedTime``): a candidate
notes when it last saw the lease record change, and takes the lease only when the
record has stayed the same for the holder's ``leaseDurationSeconds`` since then. Clock
skew between nodes therefore cannot make a live leader look expired.

With the defaults (10 s lease, 2 s retry), a candidate sees the last renewal at most
2 s after it happened, and takes over on the first retry a full lease duration after
that: within 14 s of a leader dying without releasing. A leader that shuts down
releases the lease, and another replica takes it on its next retry.

Each write carries the resourceVersion it read, so two candidates cannot both take an
expired lease: the second write gets 409 Conflict.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client import ApiClient

from scaler.kube.api_call import call_json, send
from scaler.kube.errors import KubeError, NotFound
from scaler.kube.lease import LEASES, Lease, LeaseRecord, checked_lease, spec_of

log = logging.getLogger(__name__)


class LeaderElector:
    """Acquires and renews the Lease ``namespace/name`` as ``identity``.

    ``lease_duration``: seconds a lease lasts without renewal (written, rounded up, as
    ``leaseDurationSeconds``); a leader that has not renewed for that long steps down.
    ``retry_period``: seconds between attempts to acquire or renew.
    ``clock``: monotonic seconds; ``sleep``: waits that many seconds (both injectable
    for tests). ``on_change(is_leader)`` is called whenever leadership changes.
    ``identity`` must be unique per process (two replicas with one identity would
    both lead).
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        if not 0 < retry_period < lease_duration:
            raise ValueError(
                f"need 0 < retry_period ({retry_period}) < lease_duration ({lease_duration})"
            )
        self._api = api_client
        self._namespace, self._name, self._identity = namespace, name, identity
        self._lease_duration, self._retry_period = lease_duration, retry_period
        self._clock, self._sleep, self._on_change = clock, sleep, on_change
        # client-go's resourcelock gives each call half the renew deadline, at least 1 s.
        self._timeout = max(1.0, lease_duration / 2)
        self._leader = False
        self._lease: Lease | None = None  # last read or written: resourceVersion, labels
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0  # our clock when the record last changed
        self._renewed_at = 0.0  # our clock just before our last successful write

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def identity(self) -> str:
        return self._identity

    async def run(self) -> None:
        """Acquire or renew every ``retry_period`` until cancelled."""
        while True:
            await self.step()
            await self._sleep(self._retry_period)

    async def step(self) -> bool:
        """One attempt to acquire or renew the lease; returns ``is_leader`` afterwards.

        Failures are logged here (this is the election loop's boundary) and count as a
        missed renewal.
        """
        now = self._clock()
        if self._leader and self._expired(now):
            self._set_leader(False, "its lease ran out before it could renew it")
        try:
            if self._leader:  # a renewal is worthless once the lease has run out
                # (``clock`` is monotonic seconds, as the event loop's own clock is)
                async with asyncio.timeout(self._renewed_at + self._lease_duration - now):
                    acquired = await self._try_acquire_or_renew(now)
            else:
                acquired = await self._try_acquire_or_renew(now)
        except (KubeError, TimeoutError) as err:
            log.warning("lease %s: could not acquire or renew: %s", self._where, err)
            acquired = False
        if acquired:
            self._renewed_at = now
            self._set_leader(True, "it acquired or renewed the lease")
        elif self._leader and self._expired(self._clock()):
            self._set_leader(False, "its lease ran out before it could renew it")
        elif self._leader and self._observed and self._observed.holder != self._identity:
            self._set_leader(False, f"{self._observed.holder or 'nobody'} holds the lease now")
        return self._leader

    async def release(self) -> None:
        """Give the lease up at once (on shutdown): stop leading, then clear the holder.

        Writes an empty ``holderIdentity`` and ``leaseDurationSeconds: 1``, as
        client-go's ``ReleaseOnCancel``, so another replica takes over on its next try.
        Does nothing unless leading. Raises KubeError if the lease cannot be written.
        """
        if not self._leader or self._lease is None or self._observed is None:
            return
        self._set_leader(False, "it released the lease")
        now = datetime.now(UTC)
        record = LeaseRecord("", 1, now, now, self._observed.transitions)
        try:
            await self._update(self._lease, record)
        except KubeError as err:
            if err.status != 409:
                raise
            lease = await self._read()  # changed meanwhile: release only if still ours
            if LeaseRecord.of(lease).holder == self._identity:
                await self._update(lease, record)

    @property
    def _where(self) -> str:
        return f"{self._namespace}/{self._name}"

    def _expired(self, now: float) -> bool:
        return now - self._renewed_at >= self._lease_duration

    def _set_leader(self, leader: bool, why: str) -> None:
        if leader == self._leader:
            return
        self._leader = leader
        log.info(
            "lease %s: %s %s leader: %s",
            self._where,
            self._identity,
            "is now" if leader else "is no longer",
            why,
        )
        if self._on_change is not None:
            self._on_change(leader)

    async def _try_acquire_or_renew(self, now: float) -> bool:
        """client-go's ``tryAcquireOrRenew``: True when we hold the lease afterwards."""
        wall = datetime.now(UTC)
        # 1. The leader's fast path: update the lease as last written, assuming no change.
        if self._leader and self._lease is not None and self._observed is not None:
            mine = self._observed
            try:
                await self._write(self._lease, mine.acquire_time or wall, mine.transitions, wall)
                return True
            except KubeError as err:
                log.info("lease %s: renewal failed (%s), reading it again", self._where, err)
        # 2. Read the lease, or create it.
        try:
            lease = await self._read()
        except NotFound:
            return await self._create(wall)
        self._observe(lease)
        record = LeaseRecord.of(lease)
        if record.holder and record.holder != self._identity and self._valid(now, record):
            return False
        # 3. Take it over (expired or released) or renew it (still ours).
        if record.holder == self._identity:
            acquired, transitions = record.acquire_time or wall, record.transitions
        else:
            acquired, transitions = wall, record.transitions + 1
        try:
            await self._write(lease, acquired, transitions, wall)
        except KubeError as err:
            if err.status != 409:
                raise
            log.info("lease %s: someone else wrote it first", self._where)
            return False
        return True

    def _valid(self, now: float, record: LeaseRecord) -> bool:
        duration = self._lease_duration if record.duration is None else record.duration
        return self._observed_at + duration > now

    def _observe(self, lease: Lease) -> None:
        record = LeaseRecord.of(lease)
        self._lease = lease
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()

    async def _read(self) -> Lease:
        return await self._call(f"read lease {self._where}", "GET", LEASES + "/{name}")

    async def _call(self, what: str, method: str, path: str, body: Any = None) -> Lease:
        """One request about the Lease; its answer (a Lease) checked as one."""
        where = {"namespace": self._namespace, "name": self._name}
        return await call_json(
            what,
            send(self._api, method, path, path_params=where, body=body),
            timeout=self._timeout,
            decode=checked_lease,
        )

    async def _create(self, wall: datetime) -> bool:
        record = LeaseRecord(self._identity, self._duration_seconds, wall, wall, 0)
        body: Any = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self._name, "namespace": self._namespace},
            "spec": spec_of(record),
        }
        try:
            lease = await self._call(f"create lease {self._where}", "POST", LEASES, body)
        except KubeError as err:
            if err.status != 409:  # 409 AlreadyExists: another replica created it first
                raise
            return False
        self._observe(lease)
        return True

    async def _write(
        self, lease: Lease, acquired: datetime, transitions: int, wall: datetime
    ) -> None:
        """Write ourselves as holder, renewed at ``wall``."""
        record = LeaseRecord(self._identity, self._duration_seconds, acquired, wall, transitions)
        self._observe(await self._update(lease, record))

    async def _update(self, lease: Lease, record: LeaseRecord) -> Lease:
        """PUT ``record`` over ``lease``, conditional on the resourceVersion read."""
        meta = lease.get("metadata") or {}
        metadata: dict[str, Any] = {
            "name": self._name,
            "namespace": self._namespace,
            "resourceVersion": meta.get("resourceVersion"),
        }
        if meta.get("labels"):
            metadata["labels"] = meta["labels"]
        if meta.get("annotations"):
            metadata["annotations"] = meta["annotations"]
        body: Any = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec_of(record),
        }
        return await self._call(f"update lease {self._where}", "PUT", LEASES + "/{name}", body)

    @property
    def _duration_seconds(self) -> int:
        return max(1, math.ceil(self._lease_duration))
