"""A router in front of fake Ollama pods, each optionally behind its own ``scaler proxy``,
all real servers on 127.0.0.1, each in its own thread and loop.

    with router_rig(pods=2, proxies=True, fake={"slots": 1}) as rig:
        client = ollama.Client(host=rig.url)
        rig.set_pods(rig.snapshot(0, 1, 2))        # what discovery would report
        rig.wait_idle()                            # nothing queued or held anywhere
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from scaler.proxy.app import PROXY
from scaler.proxy.app import build_app as build_proxy
from scaler.proxy.settings import ProxySettings
from scaler.router.app import ROUTER, build_app
from scaler.router.dispatch import Dispatcher
from scaler.router.endpoints import Endpoint, EndpointState, Snapshot
from scaler.router.handlers import Router
from scaler.router.settings import RouterSettings
from tests.support.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.support.threaded_server import ThreadedServer
from tests.support.waits import wait_until

MODEL = "llama3.2"


class ManualDiscovery:
    """Discovery driven by the test: it sets each snapshot itself."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.initial = snapshot
        self.dispatcher: Dispatcher | None = None

    def __call__(self, dispatcher: Dispatcher) -> contextlib.AbstractAsyncContextManager[Any]:
        @contextlib.asynccontextmanager
        async def running() -> AsyncIterator[Callable[[], bool]]:
            self.dispatcher = dispatcher
            dispatcher.update(self.initial)
            yield lambda: True

        return running()


@dataclass
class Rig:
    fakes: list[RunningFakeOllama]
    pod_urls: list[str]
    """What the router reaches for each pod: its proxy, or the fake itself."""
    server: ThreadedServer
    router: Router
    registry: CollectorRegistry
    discovery: ManualDiscovery
    proxies: list[ThreadedServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def snapshot(self, *indexes: int, state: EndpointState = EndpointState.READY) -> Snapshot:
        return {f"pod-{i}": Endpoint(f"pod-{i}", self.pod_urls[i], state) for i in indexes}

    def set_pods(self, snapshot: Snapshot) -> None:
        dispatcher = self.router.dispatcher

        async def update() -> None:
            dispatcher.update(snapshot)

        self.server.call(update)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        wait_until(predicate, timeout=timeout)

    def idle(self) -> bool:
        dispatcher = self.router.dispatcher
        stats = [fake.stats() for fake in self.fakes]
        return (dispatcher.queued, dispatcher.in_flight) == (0, 0) and all(
            (s.active, s.waiting, s.loading) == (0, 0, 0) for s in stats
        )

    def wait_idle(self, timeout: float = 10.0) -> None:
        try:
            self.wait_until(self.idle, timeout)
        except AssertionError:
            dispatcher = self.router.dispatcher
            raise AssertionError(
                f"not idle: router {dispatcher.queued} queued {dispatcher.in_flight} in flight,"
                f" fakes {[fake.stats() for fake in self.fakes]}"
            ) from None


def proxy_server(fake_url: str, parallel: int) -> ThreadedServer:
    """A pod's ``scaler proxy`` as deployed behind routers: no queue of its own. The
    server's ``proxy`` attribute is its ``Proxy`` (to drain it, as SIGTERM would)."""
    settings = ProxySettings(upstream=fake_url, parallel=parallel, max_queue=0)
    app = build_proxy(settings)
    server = ThreadedServer(lambda: app, handler_cancellation=True)
    server.proxy = app[PROXY]  # type: ignore[attr-defined]
    return server


@contextlib.contextmanager
def router_rig(
    *,
    pods: int = 2,
    ready: int | None = None,
    proxies: bool = False,
    fake: dict[str, Any] | None = None,
    router: dict[str, Any] | None = None,
) -> Iterator[Rig]:
    """``pods`` fake Ollamas; the first ``ready`` (default all) start in the snapshot."""
    fake_settings = fake or {}
    router_settings = {"parallel": fake_settings.get("slots", 1), **(router or {})}
    with contextlib.ExitStack() as stack:
        fakes = [stack.enter_context(running_fake_ollama(**fake_settings)) for _ in range(pods)]
        servers = [
            stack.enter_context(proxy_server(f.url, router_settings["parallel"]))
            for f in (fakes if proxies else [])
        ]
        urls = [s.url for s in servers] if proxies else [f.url for f in fakes]
        count = pods if ready is None else ready
        with _router(fakes, urls, count, router_settings) as rig:
            rig.proxies = servers
            yield rig


@contextlib.contextmanager
def router_rig_over(first: Rig, **router: Any) -> Iterator[Rig]:
    """A second router over the same pods (and proxies) as ``first``."""
    settings = {"parallel": first.router.settings.parallel, **router}
    with _router(first.fakes, first.pod_urls, len(first.pod_urls), settings) as rig:
        rig.proxies = first.proxies
        yield rig


@contextlib.contextmanager
def _router(
    fakes: list[RunningFakeOllama], urls: list[str], ready: int, settings: dict[str, Any]
) -> Iterator[Rig]:
    initial = {f"pod-{i}": Endpoint(f"pod-{i}", urls[i], EndpointState.READY) for i in range(ready)}
    discovery = ManualDiscovery(initial)
    registry = CollectorRegistry()
    app = build_app(RouterSettings(endpoints=["http://unused:1"], **settings), discovery, registry)
    with ThreadedServer(lambda: app, handler_cancellation=True, shutdown_timeout=5.0) as server:
        yield Rig(fakes, urls, server, app[ROUTER], registry, discovery)
