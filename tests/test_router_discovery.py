"""EndpointSlice discovery: the real kubernetes-asyncio client against the fake apiserver
over HTTP, with a fake clock and a sleep the test releases (no real waits)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from scaler.kube.client import api_client
from scaler.router.discovery import BACKOFF, EndpointSliceWatch
from scaler.router.endpoints import Endpoint, EndpointState, Snapshot
from scaler.router.slices import SliceError, endpoint_state, slice_endpoints
from tests.support.fake_kube import Cluster, running_cluster
from tests.support.fake_kube_scripted import TOKEN
from tests.support.fake_kube_watch import endpoint_slice, pod_endpoint
from tests.support.gated_clock import DEADLINE, GatedClock
from tests.support.tcp_relay import TcpRelay

NS, SERVICE = "ml", "ollama"
READY, NOT_READY, TERMINATING = (
    EndpointState.READY,
    EndpointState.NOT_READY,
    EndpointState.TERMINATING,
)


class Recorder:
    """``on_change``: keeps every snapshot; ``next`` waits for the next one."""

    def __init__(self) -> None:
        self.snapshots: list[dict[str, Endpoint]] = []
        self._seen = 0
        self._changed = asyncio.Event()

    def __call__(self, snapshot: Snapshot) -> None:
        self.snapshots.append(dict(snapshot))
        self._changed.set()

    async def next(self) -> dict[str, tuple[str, EndpointState]]:
        while len(self.snapshots) <= self._seen:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), DEADLINE)
        self._seen += 1
        return {k: (e.url, e.state) for k, e in self.snapshots[self._seen - 1].items()}


@dataclass
class Watching:
    watch: EndpointSliceWatch
    changes: Recorder
    clock: GatedClock
    cluster: Cluster

    def lists(self) -> int:
        return self.cluster.fake.request_counts()["list", "endpointslices"]

    def watch_queries(self) -> list[dict[str, str]]:
        calls = self.cluster.fake.calls("GET", "/endpointslices$")
        return [r.query for r in calls if "watch" in r.query]

    async def watches(self, count: int) -> None:
        await asyncio.wait_for(self.cluster.fake.slices.wait_watches(count), DEADLINE)

    async def started(self) -> dict[str, tuple[str, EndpointState]]:
        """The first snapshot, once the first watch is open."""
        first = await self.changes.next()
        await self.watches(1)
        return first


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        yield cluster


@contextlib.asynccontextmanager
async def watching(
    kube: Cluster, *, port_name: str | None = "http", on_change: Any = None, api: Any = None
) -> AsyncIterator[Watching]:
    changes, clock = Recorder(), GatedClock()
    watch = EndpointSliceWatch(
        api or kube.api,
        namespace=NS,
        service=SERVICE,
        port_name=port_name,
        on_change=on_change or changes,
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: 0.0,
    )
    task = asyncio.create_task(watch.run(), name="discovery under test")
    try:
        yield Watching(watch, changes, clock, kube)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task  # anything else: run() ended on its own, which it must not


def add(kube: Cluster, name: str, *endpoints: dict[str, Any], **kw: Any) -> None:
    kube.fake.slices.add(endpoint_slice(NS, name, service=SERVICE, endpoints=endpoints, **kw))


def url(last: int, port: int = 11434) -> str:
    return f"http://10.0.0.{last}:{port}"


# --- the snapshot through list and watch --------------------------------------------------


async def test_the_first_list_gives_the_service_s_pods_and_marks_it_synced(kube: Cluster) -> None:
    add(kube, "ollama-abc", pod_endpoint("a", "10.0.0.1"), pod_endpoint("b", "10.0.0.2"))
    other = endpoint_slice(
        NS, "webui-x", service="webui", endpoints=[pod_endpoint("w", "10.9.9.9")]
    )
    kube.fake.slices.add(other)
    async with watching(kube) as w:
        assert await w.changes.next() == {"a": (url(1), READY), "b": (url(2), READY)}
        assert w.watch.synced
        await w.watches(1)
        [listed] = [r for r in kube.fake.calls("GET", "/endpointslices$") if "watch" not in r.query]
        assert listed.query["labelSelector"] == "kubernetes.io/service-name=ollama"
        assert len(w.changes.snapshots) == 1


async def test_a_pod_goes_through_its_life_one_snapshot_per_change(kube: Cluster) -> None:
    slices = kube.fake.slices
    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"))
    async with watching(kube) as w:
        assert await w.started() == {"a": (url(1), READY)}
        # t1: a second slice (a Service with many pods) brings a pod that is still starting
        add(kube, "ollama-2", pod_endpoint("b", "10.0.0.2", ready=False))
        assert await w.changes.next() == {"a": (url(1), READY), "b": (url(2), NOT_READY)}
        # t2: its readiness probe passes
        slices.replace(NS, "ollama-2", endpoints=[pod_endpoint("b", "10.0.0.2")])
        assert await w.changes.next() == {"a": (url(1), READY), "b": (url(2), READY)}
        # t3: a is deleted: terminating, still serving while it drains
        slices.replace(NS, "ollama-1", endpoints=[pod_endpoint("a", "10.0.0.1", terminating=True)])
        assert await w.changes.next() == {"a": (url(1), TERMINATING), "b": (url(2), READY)}
        # t4: a stops serving: the same routing state, so nothing is announced ...
        done = pod_endpoint("a", "10.0.0.1", ready=False, terminating=True)
        slices.replace(NS, "ollama-1", endpoints=[done])
        # t5: ... and the next snapshot is b's readiness failing
        slices.replace(NS, "ollama-2", endpoints=[pod_endpoint("b", "10.0.0.2", ready=False)])
        assert await w.changes.next() == {"a": (url(1), TERMINATING), "b": (url(2), NOT_READY)}
        # t6: a is gone; then b's whole slice
        slices.replace(NS, "ollama-1", endpoints=[])
        assert await w.changes.next() == {"b": (url(2), NOT_READY)}
        slices.delete(NS, "ollama-2")
        assert await w.changes.next() == {}
        assert w.lists() == 1 and w.clock.slept == []


async def test_a_pod_moving_between_slices_is_one_endpoint_in_its_most_cautious_state(
    kube: Cluster,
) -> None:
    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"), pod_endpoint("b", "10.0.0.2"))
    async with watching(kube) as w:
        await w.started()
        # The controller writes the new slice first: b now has two copies, one stale.
        add(kube, "ollama-2", pod_endpoint("b", "10.0.0.2", ready=False))
        assert await w.changes.next() == {"a": (url(1), READY), "b": (url(2), NOT_READY)}
        kube.fake.slices.replace(NS, "ollama-1", endpoints=[pod_endpoint("a", "10.0.0.1")])
        kube.fake.slices.replace(NS, "ollama-2", endpoints=[pod_endpoint("b", "10.0.0.2")])
        assert await w.changes.next() == {"a": (url(1), READY), "b": (url(2), READY)}


# --- the watch ends: discovery resumes it, or lists again after a 410 -------------------------


async def test_an_expired_watch_resumes_at_once_without_losing_a_pod(kube: Cluster) -> None:
    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"), pod_endpoint("b", "10.0.0.2"))
    listed = str(kube.fake._version)
    async with watching(kube) as w:
        await w.started()
        w.clock.now += 300  # the watch ran its course
        assert kube.fake.slices.expire_watches() == 1
        await w.watches(2)
        assert w.lists() == 1 and len(w.changes.snapshots) == 1  # nothing changed: silence
        # A change made while no watch is open is replayed by the next watch.
        w.clock.now += 300
        kube.fake.slices.expire_watches()
        add(kube, "ollama-2", pod_endpoint("c", "10.0.0.3"))
        assert await w.changes.next() == {
            "a": (url(1), READY),
            "b": (url(2), READY),
            "c": (url(3), READY),
        }
        await w.watches(3)
        assert w.lists() == 1 and len(w.changes.snapshots) == 2 and w.clock.slept == []
        # No event came before c's: each watch resumed from the list's version.
        assert [q["resourceVersion"] for q in w.watch_queries()] == [listed] * 3


async def test_a_410_in_a_running_watch_relists_at_once(kube: Cluster) -> None:
    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"))
    async with watching(kube) as w:
        await w.started()
        w.clock.now += 60
        kube.fake.slices.expire_watches(gone=True)
        kube.fake.slices.replace(NS, "ollama-1", endpoints=[pod_endpoint("a", "10.0.0.9")])
        assert await w.changes.next() == {"a": (url(9), READY)}
        await w.watches(2)
        assert w.lists() == 2 and w.clock.slept == []


@pytest.mark.parametrize(
    "http", [pytest.param(False, id="error-event"), pytest.param(True, id="http-410")]
)
async def test_a_watch_refused_with_410_at_once_backs_off_then_relists(
    kube: Cluster, http: bool, caplog: pytest.LogCaptureFixture
) -> None:
    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"))
    async with watching(kube) as w:
        await w.started()
        w.clock.now += 60
        kube.fake.slices.gone_next_watch(http=http)
        kube.fake.slices.expire_watches()
        assert await w.clock.asleep() == 0.5  # a watch that ends at once is no success
        assert "ended at once, no event" in caplog.text
        w.clock.wake()
        await w.watches(2 if http else 3)  # an ERROR event comes in a stream of its own
        assert w.lists() == 2 and len(w.changes.snapshots) == 1


# --- errors and backoff -----------------------------------------------------------------


async def test_not_synced_until_a_list_succeeds(
    kube: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"))
    kube.fake.fail("GET", "/endpointslices$", 403, times=2, message="rbac says no")
    async with watching(kube) as w:
        assert await w.clock.asleep() == 0.5
        assert not w.watch.synced and w.changes.snapshots == []
        w.clock.wake()
        assert await w.clock.asleep() == 1.0
        w.clock.wake()
        assert await w.changes.next() == {"a": (url(1), READY)}
        assert w.watch.synced
        forbidden = [r for r in caplog.records if "rbac says no (403)" in r.getMessage()]
        assert [r.levelno for r in forbidden] == [logging.WARNING] * 2


async def test_an_unreachable_apiserver_is_retried_with_backoff_and_the_pods_stay(
    kube: Cluster, tmp_path: Path
) -> None:
    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"))
    async with TcpRelay(int(kube.fake.url.rsplit(":", 1)[1])) as relay:
        config = kube.fake.write_kubeconfig(tmp_path / "relayed")
        text = yaml.safe_load(config.read_text())
        text["clusters"][0]["cluster"]["server"] = relay.url
        config.write_text(yaml.safe_dump(text))
        async with api_client(config) as api, watching(kube, api=api) as w:
            await w.started()
            w.clock.now += 60  # a watch that worked for a minute, then the network goes
            await relay.cut()
            for expected in (0.5, 1.0, 2.0, 4.0):
                assert await w.clock.asleep() == expected
                w.clock.wake()
            assert await w.clock.asleep() == 8.0
            add(kube, "ollama-2", pod_endpoint("b", "10.0.0.2"))
            await relay.restore()
            w.clock.wake()
            assert await w.changes.next() == {"a": (url(1), READY), "b": (url(2), READY)}
            await w.watches(2)
            assert len(w.changes.snapshots) == 2  # no "pod gone" while it was away
            w.clock.now += 60  # working again: the next failure starts from 0.5 s
            await relay.cut()
            assert await w.clock.asleep() == 0.5
            await relay.restore()
            w.clock.wake()
            await w.watches(3)


async def test_a_failing_on_change_is_logged_and_retried(
    kube: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Snapshot] = []

    def on_change(snapshot: Snapshot) -> None:
        seen.append(snapshot)
        if len(seen) == 1:
            raise RuntimeError("dispatcher bug")

    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"))
    async with watching(kube, on_change=on_change) as w:
        assert await w.clock.asleep() == 0.5
        [record] = [r for r in caplog.records if r.exc_info]
        assert record.levelno == logging.ERROR and "dispatcher bug" in caplog.text
        w.clock.wake()
        await w.watches(1)
        assert len(seen) == 2 and seen[0] == seen[1]  # the retry delivers it again


# --- ports and the mapping ------------------------------------------------------------------


async def test_the_named_port_is_used_and_a_slice_without_it_is_left_out_once(
    kube: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    two_ports = (("http", 11434), ("metrics", 9090))
    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"), ports=two_ports)
    add(kube, "ollama-2", pod_endpoint("b", "10.0.0.2"), ports=(("metrics", 9091),))
    async with watching(kube, port_name="metrics") as w:
        assert await w.changes.next() == {"a": (url(1, 9090), READY), "b": (url(2, 9091), READY)}
        await w.watches(1)
    async with watching(kube, port_name=None) as w:
        assert await w.changes.next() == {"b": (url(2, 9091), READY)}
        await w.watches(2)
        w.clock.now += 60
        kube.fake.slices.expire_watches()  # the re-list sees the same slice: no new log
        await w.watches(3)
    problems = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert problems == [
        "EndpointSlice ollama-1: ports [http=11434, metrics=9090]: no port name was given, "
        "so the slice needs exactly one port; its endpoints are left out"
    ]


@pytest.mark.parametrize(
    ("conditions", "state"),
    [
        pytest.param({}, READY, id="all-nil-ready"),
        pytest.param({"ready": True, "serving": True, "terminating": False}, READY, id="ready"),
        pytest.param({"ready": False, "serving": False}, NOT_READY, id="starting"),
        pytest.param({"ready": False, "serving": True, "terminating": True}, TERMINATING,
                     id="draining"),
        pytest.param({"ready": False, "serving": False, "terminating": True}, TERMINATING,
                     id="stopping"),
        pytest.param({"ready": True, "terminating": True}, TERMINATING, id="publish-not-ready"),
        pytest.param({"ready": None, "terminating": None}, READY, id="explicit-nulls"),
    ],
)  # fmt: skip
def test_conditions_map_to_a_routing_state(
    conditions: dict[str, Any], state: EndpointState
) -> None:
    assert endpoint_state(conditions) == state


def test_addresses_keys_and_empty_slices() -> None:
    obj = endpoint_slice(NS, "s", service=SERVICE, address_type="IPv6", endpoints=[
        {"addresses": ["fd00::1"], "targetRef": {"kind": "Pod", "name": "a"}},
        {"addresses": ["fd00::2"], "targetRef": {"kind": "Node", "name": "n"}},
        {"addresses": ["fd00::3"]},
        {"addresses": []},
    ])  # fmt: skip
    assert [(e.key, e.url) for e in slice_endpoints(obj, "http")] == [
        ("a", "http://[fd00::1]:11434"),
        ("fd00::2", "http://[fd00::2]:11434"),
        ("fd00::3", "http://[fd00::3]:11434"),
    ]
    assert slice_endpoints(endpoint_slice(NS, "e", service=SERVICE, ports=()), None) == []


@pytest.mark.parametrize(
    ("ports", "port_name", "problem"),
    [
        ((), None, "ports []: no port name was given"),
        ((("http", 1),), "grpc", 'ports [http=1]: none is named "grpc"'),
        ((("http", None),), "http", "port None is not a port number"),
    ],
)
def test_a_slice_that_cannot_be_reached_names_the_field(
    ports: tuple[tuple[str, int | None], ...], port_name: str | None, problem: str
) -> None:
    obj = endpoint_slice(
        NS, "s", service=SERVICE, endpoints=[pod_endpoint("a", "10.0.0.1")], ports=ports
    )
    with pytest.raises(SliceError) as caught:
        slice_endpoints(obj, port_name)
    assert str(caught.value).startswith("EndpointSlice s: ") and problem in str(caught.value)


def test_a_malformed_slice_is_a_slice_error() -> None:
    obj = endpoint_slice(NS, "s", service=SERVICE) | {"endpoints": ["10.0.0.1"]}
    with pytest.raises(SliceError, match=r"^EndpointSlice s: malformed: "):
        slice_endpoints(obj, None)


def test_backoff_doubles_to_its_bound() -> None:
    backoff = BACKOFF
    assert [backoff.delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert backoff.delay(10_000) == 10


# --- the fake's watch protocol, read raw ------------------------------------------------------


async def _read(kube: Cluster, **query: str) -> tuple[int, list[dict[str, Any]]]:
    """One GET of the slices; for a watch, all its events until the stream ends."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    where = f"{kube.fake.url}/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(where, params=query) as response,
    ):
        if "watch" not in query:
            return response.status, [await response.json()]
        return response.status, [json.loads(line) async for line in response.content]


async def test_the_fake_lists_and_watches_as_the_apiserver_does(kube: Cluster) -> None:
    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"))
    status, [listed] = await _read(kube, labelSelector=f"kubernetes.io/service-name={SERVICE}")
    version = listed["metadata"]["resourceVersion"]
    assert status == 200 and [i["metadata"]["name"] for i in listed["items"]] == ["ollama-1"]
    assert "kind" not in listed["items"][0]
    add(kube, "ollama-2", pod_endpoint("b", "10.0.0.2"))
    kube.fake.slices.add(endpoint_slice(NS, "webui-1", service="webui"))
    kube.fake.slices.delete(NS, "ollama-1")
    query = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true"}
    query["labelSelector"] = f"kubernetes.io/service-name={SERVICE}"
    reading = asyncio.create_task(_read(kube, **query))
    await asyncio.wait_for(kube.fake.slices.wait_watches(1), DEADLINE)
    kube.fake.slices.bookmark()
    assert kube.fake.slices.expire_watches() == 1
    status, events = await reading
    assert status == 200
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "ollama-2"),
        ("DELETED", "ollama-1"),
        ("BOOKMARK", None),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert int(version) < versions[0] < versions[1] == versions[2]
    assert events[0]["object"]["kind"] == "EndpointSlice"


async def test_the_fake_answers_an_old_version_with_410(kube: Cluster) -> None:
    add(kube, "ollama-1", pod_endpoint("a", "10.0.0.1"))
    old = kube.fake.get("endpointslices", NS, "ollama-1")["metadata"]["resourceVersion"]
    kube.fake.slices.compact()
    status, events = await _read(kube, watch="true", resourceVersion=str(int(old) - 1))
    assert status == 200
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
        ("ERROR", 410, "Expired")
    ]
    kube.fake.slices.gone_next_watch(http=True)
    status, [body] = await _read(kube, watch="true", resourceVersion=old)
    assert (status, body["kind"], body["code"]) == (410, "Status", 410)
