"""A scale-down as the cluster runs it, with real servers on loopback: fake Ollamas, each
behind a real ``scaler proxy`` on its own pod address (127.0.0.N, one shared port, as
pod IPs and the proxy's containerPort are), a real router in front, the fake API
server, and the controller's real reconcile writing deletion costs and the scale.

What Kubernetes itself does is emulated, in the order it does it:

- the ReplicaSet picks the pods to delete (``replicaset_victims``: upstream
  ``ActivePodsWithRanks`` for pods equally running and ready: the lowest
  ``pod-deletion-cost`` first, then the most recently ready, then the youngest);
- the pod gets its ``deletionTimestamp``; the EndpointSlice marks it terminating
  (the router's view) while the kubelet sends the proxy SIGTERM (``Proxy.drain``);
- Ollama's preStop returns once the proxy stops listening, and only then Ollama gets
  SIGTERM (the fake stops, dropping whatever it still serves: a cut-off answer shows).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from scaler.kube.workload import DELETION_COST_ANNOTATION
from scaler.proxy.app import PROXY
from scaler.proxy.app import build_app as build_proxy
from scaler.proxy.handlers import Proxy
from scaler.proxy.settings import ProxySettings
from scaler.router.app import ROUTER, build_app
from scaler.router.endpoints import Endpoint, EndpointState
from scaler.router.handlers import Router
from scaler.router.settings import RouterSettings
from tests.support.fake_kube import Cluster
from tests.support.fake_kube_objects import EPOCH, time_str
from tests.support.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.support.router_rig import ManualDiscovery
from tests.support.threaded_server import ThreadedServer

NS = "chatbot"
LABELS = {"app": "ollama"}


def pod_ip(i: int) -> str:
    return f"127.0.0.{60 + i}"


def port_free_on(addresses: list[str]) -> int:
    """A port free on every address (pods share the proxy's port, not the address)."""
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port: int = probe.getsockname()[1]
        try:
            for address in addresses[1:]:
                with socket.socket() as other:
                    other.bind((address, port))
        except OSError:
            continue
        return port
    raise AssertionError("no port free on every pod address")


@dataclass
class Pod:
    """One Ollama pod: its fake Ollama and its proxy, which a restart makes anew."""

    index: int
    fake: RunningFakeOllama
    server: ThreadedServer
    proxies: list[Proxy] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"ollama-{self.index}"

    @property
    def proxy(self) -> Proxy:
        return self.proxies[-1]

    @property
    def url(self) -> str:
        return self.server.url


@dataclass
class Stack:
    pods: list[Pod]
    router: Router
    router_server: ThreadedServer
    registry: CollectorRegistry  # the router's
    kube: Cluster
    live: set[int] = field(default_factory=set)
    created: int = 0  # pods created so far: a pod's age in the fake API
    held_at_sigterm: list[int] = field(default_factory=list)
    """Per deleted pod: the answers its proxy held when the drain began."""

    @property
    def url(self) -> str:
        return self.router_server.url

    def show(self, states: dict[int, EndpointState]) -> None:
        """What the EndpointSlices would say: the router's snapshot."""
        snapshot = {
            self.pods[i].name: Endpoint(self.pods[i].name, self.pods[i].url, state)
            for i, state in states.items()
        }
        dispatcher = self.router.dispatcher

        async def update() -> None:
            dispatcher.update(snapshot)

        self.router_server.call(update)

    def ready_states(self) -> dict[int, EndpointState]:
        return dict.fromkeys(sorted(self.live), EndpointState.READY)

    def create(self, i: int) -> None:
        """A new pod: Ollama and proxy up, in the API as the youngest, then ready."""
        pod = self.pods[i]
        if not pod.fake.server.running:
            pod.fake.start()
        if not pod.server.running:
            pod.server.start()
        self.created += 1
        moment = EPOCH + timedelta(seconds=self.created)
        self.kube.fake.add_pod(
            NS, pod.name, labels=LABELS, ip=pod_ip(i), start_time=moment, ready_since=moment
        )
        self.live.add(i)
        self.show(self.ready_states())

    async def delete(self, victims: list[int]) -> None:
        """The kubelet's side of deleting ``victims``, all at once as it does."""
        for i in victims:
            self.kube.fake.update(
                "pods", NS, self.pods[i].name, {"metadata": {"deletionTimestamp": time_str(EPOCH)}}
            )
            self.live.discard(i)
        states = self.ready_states() | dict.fromkeys(victims, EndpointState.TERMINATING)
        self.show(states)
        held = await asyncio.gather(*(asyncio.to_thread(self._stop, self.pods[i]) for i in victims))
        self.held_at_sigterm.extend(held)
        self.show(self.ready_states())
        for i in victims:
            self.kube.fake.delete("pods", NS, self.pods[i].name)

    @staticmethod
    def _stop(pod: Pod) -> int:
        """SIGTERM to the proxy (it drains), then it stops listening; Ollama's preStop
        returns and Ollama stops. Returns what the proxy held at SIGTERM."""
        proxy = pod.proxy
        held = proxy.admission.active + proxy.admission.queued
        future = asyncio.run_coroutine_threadsafe(proxy.drain(), pod.server.loop)
        future.result(60)
        pod.server.stop()
        pod.fake.stop()
        return held


def replicaset_victims(kube: Cluster, count: int) -> list[str]:
    """The ``count`` pods the ReplicaSet deletes, from what the API holds: among pods
    equally running and ready, lowest deletion cost, then most recently ready, then
    youngest (upstream ``ActivePodsWithRanks``)."""
    pods = [
        obj
        for (resource, ns, _), obj in kube.fake.objects.items()
        if resource == "pods" and ns == NS and "deletionTimestamp" not in obj["metadata"]
    ]

    def rank(obj: dict[str, Any]) -> tuple[int, float, float]:
        annotations = obj["metadata"].get("annotations") or {}
        cost = int(annotations.get(DELETION_COST_ANNOTATION, "0"))
        (ready,) = [c for c in obj["status"]["conditions"] if c["type"] == "Ready"]
        created = obj["metadata"]["creationTimestamp"]
        return cost, -_seconds(ready["lastTransitionTime"]), -_seconds(created)

    return [obj["metadata"]["name"] for obj in sorted(pods, key=rank)[:count]]


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@contextlib.asynccontextmanager
async def running_stack(
    kube: Cluster, *, pods: int, parallel: int, fake: dict[str, Any]
) -> AsyncIterator[Stack]:
    """``pods`` pods, none live yet (``create`` them), and a router over them."""
    with contextlib.ExitStack() as stack:
        port = port_free_on([pod_ip(i) for i in range(pods)])
        settings = ProxySettings(max_queue=0, parallel=parallel, drain_timeout=60)
        made: list[Pod] = []
        for i in range(pods):
            ollama = stack.enter_context(running_fake_ollama(slots=parallel, **fake))
            made.append(_pod(i, ollama, settings, port))
            stack.callback(made[-1].server.close)
        router = stack.enter_context(_router(parallel))
        kube.fake.add_deployment(NS, "ollama", replicas=0)
        yield Stack(made, *router, kube)


def _pod(i: int, fake: RunningFakeOllama, settings: ProxySettings, port: int) -> Pod:
    proxies: list[Proxy] = []
    mine = settings.model_copy(update={"upstream": fake.url})

    def factory() -> Any:
        app = build_proxy(mine, CollectorRegistry())
        proxies.append(app[PROXY])
        return app

    server = ThreadedServer(factory, host=pod_ip(i), port=port, handler_cancellation=True)
    return Pod(i, fake, server, proxies)


@contextlib.contextmanager
def _router(parallel: int) -> Iterator[tuple[Router, ThreadedServer, CollectorRegistry]]:
    discovery = ManualDiscovery({})
    settings = RouterSettings(endpoints=["http://unused:1"], parallel=parallel, max_queue=4096)
    registry = CollectorRegistry()
    app = build_app(settings, discovery, registry)
    with ThreadedServer(lambda: app, handler_cancellation=True, shutdown_timeout=5.0) as server:
        yield app[ROUTER], server, registry
