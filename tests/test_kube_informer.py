"""The informer: the real kubernetes-asyncio client against the fake API server over HTTP,
with a fake clock and a sleep the test releases (no real waits)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaler.kube.actuator import KubeActuator
from scaler.kube.client import api_client
from scaler.kube.informer import Backoff, Informer
from tests.support.fake_kube import Cluster, running_cluster
from tests.support.fake_kube_watch import KINDS, endpoint_slice, pod_endpoint
from tests.support.gated_clock import DEADLINE, GatedClock
from tests.support.tcp_relay import TcpRelay
from tests.support.waits import until

NS = "ml"
PATH = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
SELECTOR = "kubernetes.io/service-name=ollama"
STALE_AFTER = 150.0


class Changes:
    """``on_change``: every call as (name, old version, new version); ``next`` waits."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str | None]] = []
        self._seen = 0
        self._changed = asyncio.Event()

    def __call__(self, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        self.calls.append((name, _rv(old), _rv(new)))
        self._changed.set()

    async def next(self, count: int = 1) -> list[tuple[str, str | None, str | None]]:
        while len(self.calls) < self._seen + count:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), DEADLINE)
        got = self.calls[self._seen : self._seen + count]
        self._seen += count
        return got


def _rv(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else str(obj["metadata"]["resourceVersion"])


@dataclass
class Informing:
    informer: Informer
    changes: Changes
    clock: GatedClock
    cluster: Cluster

    def lists(self) -> int:
        return sum(
            1 for r in self.cluster.fake.calls("GET", "/endpointslices$") if "watch" not in r.query
        )

    def watch_queries(self) -> list[dict[str, str]]:
        calls = self.cluster.fake.calls("GET", "/endpointslices$")
        return [r.query for r in calls if "watch" in r.query]

    async def started(self, count: int = 1) -> None:
        """Once the first list's ``count`` changes are reported and the watch is open."""
        await self.changes.next(count)
        await self.watches(1)

    async def watches(self, count: int) -> None:
        await asyncio.wait_for(self.cluster.fake.slices.wait_watches(count), DEADLINE)


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        yield cluster


@contextlib.asynccontextmanager
async def informing(
    kube: Cluster, *, api: Any = None, on_change: Any = None
) -> AsyncIterator[Informing]:
    changes, clock = Changes(), GatedClock()
    informer = Informer(
        api or kube.api,
        path=PATH,
        label_selector=SELECTOR,
        on_change=on_change or changes,
        what=f"endpointslices of {NS}",
        clock=clock,
        sleep=clock.sleep,
    )
    task = asyncio.create_task(informer.run(), name="informer under test")
    try:
        yield Informing(informer, changes, clock, kube)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task  # anything else: run() ended on its own, which it must not


def add(kube: Cluster, name: str, *pods: str, service: str = "ollama") -> str:
    endpoints = [pod_endpoint(p, f"10.0.0.{i + 1}") for i, p in enumerate(pods)]
    obj = kube.fake.slices.add(endpoint_slice(NS, name, service=service, endpoints=endpoints))
    return str(obj["metadata"]["resourceVersion"])


def names(informer: Informer) -> list[str]:
    return sorted(obj["metadata"]["name"] for obj in informer.items())


# --- list, then watch ---------------------------------------------------------------------


async def test_it_lists_then_watches_and_reports_every_change(kube: Cluster) -> None:
    one, two = add(kube, "ollama-1", "a"), add(kube, "ollama-2", "b")
    add(kube, "webui-1", "w", service="webui")  # not selected
    async with informing(kube) as i:
        assert sorted(await i.changes.next(2)) == [("ollama-1", None, one), ("ollama-2", None, two)]
        assert i.informer.synced and i.informer.fresh(0.0, STALE_AFTER)
        await i.watches(1)
        [query] = i.watch_queries()
        assert query == {
            "labelSelector": SELECTOR,
            "watch": "true",
            "resourceVersion": i.informer.version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "60",
        }
        three = add(kube, "ollama-3", "c")
        assert await i.changes.next() == [("ollama-3", None, three)]
        changed = kube.fake.slices.replace(NS, "ollama-1", endpoints=[])
        assert await i.changes.next() == [("ollama-1", one, _rv(changed))]
        kube.fake.slices.delete(NS, "ollama-2")
        assert await i.changes.next() == [("ollama-2", two, None)]
        assert names(i.informer) == ["ollama-1", "ollama-3"]
        assert i.informer.get("ollama-1") == changed and i.informer.get("ollama-2") is None
        assert i.informer.version == str(kube.fake._version)
        assert i.lists() == 1 and i.clock.slept == []


async def test_a_watch_the_server_ends_resumes_from_the_last_version_without_a_list(
    kube: Cluster,
) -> None:
    add(kube, "ollama-1", "a")
    async with informing(kube) as i:
        await i.started()
        two = add(kube, "ollama-2", "b")
        await i.changes.next()
        last = i.informer.version
        assert last == two
        i.clock.now += 60  # the watch ran its course
        assert kube.fake.slices.expire_watches() == 1
        three = add(kube, "ollama-3", "c")  # made while no watch is open
        assert await i.changes.next() == [("ollama-3", None, three)]
        await i.watches(2)
        assert i.watch_queries()[1]["resourceVersion"] == last
        assert i.lists() == 1 and i.clock.slept == [] and i.informer.heard_at == 60


@pytest.mark.parametrize(
    "http", [pytest.param(False, id="error-event"), pytest.param(True, id="http-410")]
)
async def test_a_410_lists_again_and_the_store_converges_with_deletes_in_the_gap(
    kube: Cluster, http: bool
) -> None:
    one, two = add(kube, "ollama-1", "a"), add(kube, "ollama-2", "b")
    async with informing(kube) as i:
        await i.started(2)
        i.clock.now += 60
        kube.fake.slices.expire_watches()
        kube.fake.slices.delete(NS, "ollama-2")  # in the gap, then history is compacted:
        three = add(kube, "ollama-3", "c")  # the next watch cannot replay them
        kube.fake.slices.compact()
        if http:
            kube.fake.slices.gone_next_watch(http=True)
        assert await i.clock.asleep() == 0.1  # a watch refused at once is no success
        i.clock.wake()
        # the list is compared with the store: the delete in the gap is reported
        assert await i.changes.next(2) == [("ollama-2", two, None), ("ollama-3", None, three)]
        assert names(i.informer) == ["ollama-1", "ollama-3"]
        assert _rv(i.informer.get("ollama-1")) == one  # unchanged: not reported again
        await i.watches(2 if http else 3)  # an ERROR event comes in a stream of its own
        assert i.lists() == 2 and len(i.changes.calls) == 4


async def test_a_410_in_a_running_watch_lists_again_at_once(kube: Cluster) -> None:
    add(kube, "ollama-1", "a")
    async with informing(kube) as i:
        await i.started()
        i.clock.now += 60
        kube.fake.slices.expire_watches(gone=True)
        changed = kube.fake.slices.replace(NS, "ollama-1", endpoints=[])
        [(name, _, new)] = await i.changes.next()
        assert (name, new) == ("ollama-1", _rv(changed))
        await i.watches(2)
        assert i.lists() == 2 and i.clock.slept == []


async def test_a_bookmark_moves_the_version_and_counts_as_hearing_from_the_server(
    kube: Cluster,
) -> None:
    add(kube, "ollama-1", "a")
    async with informing(kube) as i:
        await i.started()
        before = i.informer.version
        add(kube, "webui-1", "w", service="webui")  # a write the watch does not select
        i.clock.now += 30
        kube.fake.slices.bookmark()
        await until(lambda: i.informer.version != before, timeout=DEADLINE)
        assert i.informer.version == str(kube.fake._version) != before
        assert i.informer.heard_at == 30 and len(i.changes.calls) == 1


async def test_an_event_larger_than_aiohttp_s_line_limit_is_read(kube: Cluster) -> None:
    one = add(kube, "ollama-1", "a")
    async with informing(kube) as i:
        await i.started()
        big = kube.fake.slices.replace(NS, "ollama-1", metadata={"name": "ollama-1",
            "namespace": NS, "labels": {"kubernetes.io/service-name": "ollama"},
            "annotations": {"note": "x" * 300_000}})  # fmt: skip
        assert await i.changes.next() == [("ollama-1", one, _rv(big))]
        assert i.informer.get("ollama-1") == big and i.clock.slept == []


async def test_a_malformed_event_is_a_logged_failure_then_the_watch_resumes(
    kube: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    add(kube, "ollama-1", "a")
    async with informing(kube) as i:
        await i.started()
        i.clock.now += 60
        [watcher] = kube.fake.watch._open
        nameless = {"metadata": {"resourceVersion": str(kube.fake._version)}}
        watcher.queue.put_nowait({"type": "ADDED", "object": nameless})
        assert await i.clock.asleep() == 0.1
        [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warning.startswith("watch endpointslices of ml: a ADDED with no name; retrying")
        i.clock.wake()
        await i.watches(2)
        assert i.lists() == 1


# --- failures -----------------------------------------------------------------------------


async def test_not_synced_until_a_list_succeeds_with_backoff_meanwhile(
    kube: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    add(kube, "ollama-1", "a")
    kube.fake.fail("GET", "/endpointslices$", 403, times=2, message="rbac says no")
    async with informing(kube) as i:
        assert await i.clock.asleep() == 0.1
        assert not i.informer.synced and not i.informer.fresh(0.0, STALE_AFTER)
        i.clock.wake()
        assert await i.clock.asleep() == 0.2
        i.clock.wake()
        await i.changes.next()
        assert i.informer.synced
    forbidden = [r for r in caplog.records if "rbac says no (403)" in r.getMessage()]
    assert [r.levelno for r in forbidden] == [logging.WARNING] * 2
    assert forbidden[0].getMessage().startswith("list endpointslices of ml: ")


async def test_an_unreachable_api_server_backs_off_keeps_the_store_and_turns_stale(
    kube: Cluster, tmp_path: Path
) -> None:
    add(kube, "ollama-1", "a")
    async with TcpRelay(int(kube.fake.url.rsplit(":", 1)[1])) as relay:
        config = kube.fake.write_kubeconfig(tmp_path / "relayed")
        text = yaml.safe_load(config.read_text())
        text["clusters"][0]["cluster"]["server"] = relay.url
        config.write_text(yaml.safe_dump(text))
        async with api_client(config) as api, informing(kube, api=api) as i:
            await i.changes.next()
            await i.watches(1)
            i.clock.now += 60  # a watch that worked for a minute, then the network goes
            await relay.cut()
            heard = i.informer.heard_at
            for expected in (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0):
                assert await i.clock.asleep() == expected
                i.clock.now += 20  # the failing attempts' own time
                i.clock.wake()
            assert await i.clock.asleep() == 10.0
            assert i.informer.synced and names(i.informer) == ["ollama-1"]
            assert i.informer.heard_at == heard
            assert not i.informer.fresh(i.clock.now, STALE_AFTER)
            assert i.informer.fresh(heard + STALE_AFTER, STALE_AFTER)  # the bound, inclusive
            two = add(kube, "ollama-2", "b")
            await relay.restore()
            i.clock.wake()
            assert await i.changes.next() == [("ollama-2", None, two)]  # resumed: replayed
            assert i.informer.fresh(i.clock.now, STALE_AFTER) and i.lists() == 1


async def test_a_failing_on_change_is_logged_and_the_change_offered_again(
    kube: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def on_change(name: str, old: Any, new: Any) -> None:
        seen.append(name)
        if len(seen) == 1:
            raise RuntimeError("consumer bug")

    add(kube, "ollama-1", "a")
    async with informing(kube, on_change=on_change) as i:
        assert await i.clock.asleep() == 0.1
        [record] = [r for r in caplog.records if r.exc_info]
        assert record.levelno == logging.ERROR and "consumer bug" in caplog.text
        assert not i.informer.synced and list(i.informer.items()) == []
        i.clock.wake()
        await i.watches(1)
        assert seen == ["ollama-1", "ollama-1"] and names(i.informer) == ["ollama-1"]


async def test_cancelling_in_a_backoff_or_a_watch_ends_the_run(kube: Cluster) -> None:
    kube.fake.fail("GET", "/endpointslices$", 500)
    async with informing(kube) as i:
        assert await i.clock.asleep() == 0.1  # cancelled in the sleep
    async with informing(kube) as i:
        await i.watches(1)  # cancelled in the open watch


def test_backoff_doubles_from_a_tenth_of_a_second_to_ten() -> None:
    assert [Backoff().delay(n) for n in range(1, 10)] == [
        0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0
    ]  # fmt: skip
    assert Backoff(initial=0.5).delay(10_000) == 10


# --- the fake's watch of the controller's kinds: every write is an event -------------------


def _kind_of(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str:
    return "ADDED" if old is None else "DELETED" if new is None else "MODIFIED"


def kind_informer(kube: Cluster, resource: str, seen: list[tuple[str, str]]) -> Informer:
    kind = next(k for k in KINDS if k.resource == resource)
    clock = GatedClock()
    return Informer(
        kube.api,
        path=kind.path.format(ns=NS),
        on_change=lambda name, old, new: seen.append((name, _kind_of(old, new))),
        clock=clock,
        sleep=clock.sleep,
    )


async def test_every_write_helper_of_the_fake_is_a_watch_event(kube: Cluster) -> None:
    fake = kube.fake
    fake.add_deployment(NS, "ollama", replicas=1)
    fake.add_pod(NS, "ollama-a", labels={"app": "ollama"})
    resources = ("deployments", "pods", "horizontalpodautoscalers")
    seen: dict[str, list[tuple[str, str]]] = {r: [] for r in resources}
    informers = [kind_informer(kube, r, seen[r]) for r in resources]
    tasks = [asyncio.create_task(i.run(), name=f"informer {n}") for n, i in enumerate(informers)]
    try:
        for resource in resources:
            await asyncio.wait_for(fake.watch.wait_watches(1, resource), DEADLINE)
        actuator = KubeActuator(kube.api, request_timeout=DEADLINE)
        await actuator.scale(NS, "ollama", 3)  # the scale subresource's PATCH
        await actuator.annotate_pod(
            NS, "ollama-a", {"controller.kubernetes.io/pod-deletion-cost": "5"}
        )
        fake.update("deployments", NS, "ollama", {"metadata": {"annotations": {"x": "y"}}})
        fake.add_pod(NS, "ollama-b", labels={"app": "ollama"})
        fake.add_hpa(NS, "cpu", target_name="ollama")
        fake.delete("pods", NS, "ollama-a")
        fake.delete("deployments", NS, "ollama")
        fake.add_deployment(NS, "ollama", replicas=2)  # recreated
        await until(lambda: sum(map(len, seen.values())) == 10, timeout=DEADLINE)
        assert seen == {
            "deployments": [
                ("ollama", "ADDED"),
                ("ollama", "MODIFIED"),  # scaled
                ("ollama", "MODIFIED"),  # annotated by someone else
                ("ollama", "DELETED"),
                ("ollama", "ADDED"),
            ],
            "pods": [
                ("ollama-a", "ADDED"),
                ("ollama-a", "MODIFIED"),  # its deletion cost
                ("ollama-b", "ADDED"),
                ("ollama-a", "DELETED"),
            ],
            "horizontalpodautoscalers": [("cpu", "ADDED")],
        }
        deployments, pods, _ = informers
        assert [d["spec"]["replicas"] for d in deployments.items()] == [2]
        assert [p["metadata"]["name"] for p in pods.items()] == ["ollama-b"]
        counts = fake.request_counts()
        assert counts["patch", "deployments/scale"] == 1 and counts["patch", "pods"] == 1
        assert all(counts["list", r] == 1 and counts["watch", r] == 1 for r in resources)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
