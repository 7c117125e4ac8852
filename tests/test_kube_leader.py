"""Leader election over real HTTP against the fake apiserver's Leases.

Time is fake: each elector reads an injected clock, and ``run`` sleeps on a fake
``sleep`` that the test releases, so no test waits for a lease to expire.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scaler.kube.leader import LeaderElector
from tests.support.fake_kube import Cluster, running_cluster
from tests.support.fake_kube_objects import MICRO_TIME

LEASE = r"/leases/scaler$"


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        yield cluster


@dataclass
class Clock:
    """A monotonic clock the test sets; each replica may have its own (skew)."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Replica:
    elector: LeaderElector
    clock: Clock
    changes: list[bool] = field(default_factory=list)


def _replica(kube: Cluster, identity: str, clock: Clock | None = None, **kw: Any) -> Replica:
    clock = clock or Clock()
    changes: list[bool] = []
    elector = LeaderElector(
        kube.api,
        namespace="ml",
        name="scaler",
        identity=identity,
        clock=clock,
        on_change=changes.append,
        **kw,
    )
    return Replica(elector, clock, changes)


def _spec(kube: Cluster) -> dict[str, Any]:
    spec: dict[str, Any] = kube.fake.get("leases", "ml", "scaler")["spec"]
    return spec


async def _step_at(replica: Replica, now: float) -> bool:
    replica.clock.now = now
    return await replica.elector.step()


async def test_one_of_two_candidates_creates_the_lease_and_leads(kube: Cluster) -> None:
    a, b = _replica(kube, "a"), _replica(kube, "b")
    assert await _step_at(a, 0) is True
    assert await _step_at(b, 0) is False

    spec = _spec(kube)
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"], spec["leaseTransitions"]) == (
        "a",
        10,
        0,
    )
    assert spec["acquireTime"] == spec["renewTime"]
    assert MICRO_TIME.match(spec["renewTime"])
    assert (a.elector.is_leader, a.changes, b.elector.is_leader, b.changes) == (
        True,
        [True],
        False,
        [],
    )
    assert len(kube.fake.calls("POST", "/leases$")) == 1


async def test_the_leader_renews_every_retry_and_keeps_the_lease(kube: Cluster) -> None:
    a, b = _replica(kube, "a"), _replica(kube, "b", Clock(7000.0))
    await _step_at(a, 0)
    acquired = _spec(kube)["acquireTime"]
    renewals = []
    for t in range(2, 32, 2):  # t=2..30 s, both every retry period
        assert await _step_at(a, t) is True
        assert await _step_at(b, 7000 + t) is False
        renewals.append(_spec(kube)["renewTime"])
    assert renewals == sorted(renewals) and len(set(renewals)) == len(renewals)
    assert (_spec(kube)["acquireTime"], _spec(kube)["leaseTransitions"]) == (acquired, 0)
    assert (a.changes, b.changes) == ([True], [])


async def test_a_candidate_takes_over_a_full_lease_after_it_saw_the_last_renewal(
    kube: Cluster,
) -> None:
    a, b = _replica(kube, "a"), _replica(kube, "b", Clock(5000.0))  # clocks far apart
    await _step_at(a, 0)  # t=0: a leads, then dies without releasing
    for t in (0, 2, 4, 6, 8, 9.9):  # b saw a's record at t=0 on its own clock
        assert await _step_at(b, 5000 + t) is False
    assert await _step_at(b, 5010) is True  # t=10: a full lease duration later
    spec = _spec(kube)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)
    assert spec["acquireTime"] == spec["renewTime"]
    assert b.changes == [True]


@pytest.mark.parametrize(
    "renewed",
    [
        pytest.param(datetime(2000, 1, 1, tzinfo=UTC), id="renew-time-long-past"),
        pytest.param(datetime(2100, 1, 1, tzinfo=UTC), id="renew-time-in-the-future"),
    ],
)
async def test_the_lease_renew_time_is_never_compared_with_local_wall_time(
    kube: Cluster, renewed: datetime
) -> None:
    kube.fake.add_lease(
        "ml", "scaler", holder="old", duration=10, renew_time=renewed, acquire_time=renewed
    )
    b = _replica(kube, "b")
    for t in (0, 2, 4, 6, 8, 9.9):
        assert await _step_at(b, t) is False
    assert await _step_at(b, 10) is True


async def test_release_hands_the_lease_over_at_once(kube: Cluster) -> None:
    a, b = _replica(kube, "a"), _replica(kube, "b")
    await _step_at(a, 0)
    assert await _step_at(b, 0) is False

    await a.elector.release()

    assert (a.elector.is_leader, a.changes) == (False, [True, False])
    spec = _spec(kube)
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"]) == ("", 1)
    assert await _step_at(b, 0.5) is True  # its next retry, long before 10 s
    assert (_spec(kube)["holderIdentity"], _spec(kube)["leaseTransitions"]) == ("b", 1)


async def test_release_does_nothing_unless_leading(kube: Cluster) -> None:
    b = _replica(kube, "b")
    await b.elector.release()
    assert kube.fake.requests == []


@pytest.mark.parametrize(
    "conflict",
    [
        pytest.param("another-writer", id="lease-changed-meanwhile"),
        pytest.param("scripted", id="scripted-409"),
    ],
)
async def test_a_conflict_on_renewal_is_resolved_by_reading_the_lease_again(
    kube: Cluster, conflict: str
) -> None:
    a = _replica(kube, "a")
    await _step_at(a, 0)
    if conflict == "another-writer":  # e.g. kubectl annotate: a newer resourceVersion
        kube.fake.update("leases", "ml", "scaler", {"metadata": {"annotations": {"x": "y"}}})
    else:
        kube.fake.fail("PUT", LEASE, 409)
    before = len(kube.fake.requests)

    assert await _step_at(a, 2) is True

    assert [r.method for r in kube.fake.requests[before:]] == ["PUT", "GET", "PUT"]
    assert a.changes == [True]
    lease = kube.fake.get("leases", "ml", "scaler")
    assert lease["spec"]["holderIdentity"] == "a"
    if conflict == "another-writer":
        assert lease["metadata"]["annotations"] == {"x": "y"}  # kept, as client-go does


async def test_a_leader_that_finds_another_holder_steps_down_at_once(kube: Cluster) -> None:
    a = _replica(kube, "a")
    await _step_at(a, 0)
    now = datetime.now(UTC)
    kube.fake.update("leases", "ml", "scaler", {"spec": {"holderIdentity": "c"}})
    kube.fake.update("leases", "ml", "scaler", {"spec": {"renewTime": now.isoformat()}})

    assert await _step_at(a, 2) is False
    assert a.changes == [True, False]
    assert _spec(kube)["holderIdentity"] == "c"


async def test_a_leader_that_cannot_renew_steps_down_after_the_lease_duration(
    kube: Cluster,
) -> None:
    a = _replica(kube, "a")
    await _step_at(a, 0)
    kube.fake.fail("PUT", LEASE, 500, times=None)
    kube.fake.fail("GET", LEASE, 500, times=None)
    for t in (2, 4, 6, 8, 9.9):
        assert await _step_at(a, t) is True, f"t={t}"
    assert await _step_at(a, 10) is False
    assert a.changes == [True, False]
    assert await _step_at(a, 12) is False  # still failing: no flapping back
    assert a.changes == [True, False]


async def test_two_candidates_racing_to_create_the_lease_yield_one_leader(
    kube: Cluster,
) -> None:
    a, b = _replica(kube, "a"), _replica(kube, "b")
    assert await _step_at(a, 0) is True
    kube.fake.fail("GET", LEASE, 404)  # b read before a created it ...
    assert await _step_at(b, 0) is False  # ... and its create gets 409 AlreadyExists
    assert [r.method for r in kube.fake.requests[-2:]] == ["GET", "POST"]
    assert await _step_at(b, 2) is False
    assert _spec(kube)["holderIdentity"] == "a"


class FakeTime:
    """One fake clock for several ``run`` loops: ``sleep`` parks until ``run_until``."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    async def run_until(self, end: float, *, sleepers: int) -> None:
        """Wake sleepers in time order up to ``end``; each runs until it sleeps again."""
        await self._settle(sleepers)
        while self._sleepers and self._sleepers[0][0] <= end:
            due, _, future = heapq.heappop(self._sleepers)
            self.now = due
            if not future.done():
                future.set_result(None)
                await self._settle(sleepers)
        self.now = end

    async def _settle(self, sleepers: int) -> None:
        """Wait (bounded) until ``sleepers`` loops are parked: their HTTP calls are done."""
        for _ in range(2000):
            if sum(not f.done() for _, _, f in self._sleepers) >= sleepers:
                return
            await asyncio.sleep(0.001)
        pytest.fail(f"the election loops did not go back to sleep by t={self.now}")


async def test_two_running_replicas_a_new_leader_within_15_s_of_the_old_one_dying(
    kube: Cluster,
) -> None:
    time = FakeTime()
    took_over: dict[str, float] = {}
    electors = {}
    for identity in ("a", "b"):

        def changed(leading: bool, identity: str = identity) -> None:
            if leading:
                took_over[identity] = time.now

        electors[identity] = LeaderElector(
            kube.api,
            namespace="ml",
            name="scaler",
            identity=identity,
            clock=time.clock,
            sleep=time.sleep,
            on_change=changed,
        )
    tasks = {name: asyncio.create_task(e.run(), name=name) for name, e in electors.items()}
    try:
        await time.run_until(21, sleepers=2)
        [leader] = [name for name, e in electors.items() if e.is_leader]
        [other] = [name for name in electors if name != leader]
        assert took_over == {leader: 0.0}

        died = time.now  # its last renewal was at t=20
        tasks[leader].cancel()
        await asyncio.gather(tasks[leader], return_exceptions=True)
        await time.run_until(died + 15, sleepers=1)

        assert electors[other].is_leader
        assert 20 + 10 <= took_over[other] <= died + 15
        assert _spec(kube)["holderIdentity"] == other
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


def test_a_retry_period_not_shorter_than_the_lease_is_refused() -> None:
    with pytest.raises(ValueError, match="retry_period"):
        LeaderElector(
            object(),  # type: ignore[arg-type]
            namespace="ml",
            name="scaler",
            identity="a",
            lease_duration=2,
            retry_period=2,
        )
