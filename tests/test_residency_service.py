"""A second model on the pods, end to end: real proxies in front of fake Ollamas that
evict as Ollama does (``max_loaded_models=1``), all on loopback, ``/readyz`` polled
throughout as the kubelet would (docs/proxy.md, "Model residency").

Bound stated and tested: every pod stays ready the whole time, and the ready model is
resident again within ``reload_after + load time + 1 s`` of the last other-model answer
(here 0.2 + 0.3 + 1 = 1.5 s; in the manifests 5 s + the model's load).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry

from scaler.proxy.app import PROXY, build_app
from scaler.proxy.handlers import Proxy
from scaler.proxy.settings import ProxySettings
from tests.support.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.support.threaded_server import ThreadedServer
from tests.support.waits import wait_until

READY = "llama3.2:latest"
OTHER = "gemma3:1b"
RELOAD_AFTER = 0.2
LOAD_DELAY = 0.3
BOUND = RELOAD_AFTER + LOAD_DELAY + 1.0
"""Seconds from the last other-model answer until the ready model is loaded again."""


@dataclass
class Pod:
    fake: RunningFakeOllama
    server: ThreadedServer
    proxy: Proxy
    registry: CollectorRegistry

    @property
    def url(self) -> str:
        return self.server.url

    def reloads(self, result: str) -> float:
        labels = {"result": result}
        return self.registry.get_sample_value("ollama_proxy_model_reloads_total", labels) or 0.0


@contextlib.contextmanager
def pods(count: int, *, load_delay: float = LOAD_DELAY) -> Iterator[list[Pod]]:
    """``count`` pods as deployed: a fake Ollama holding one model, its proxy with the
    ready model and no queue (a router holds it), warmed up as the manifests do."""
    with contextlib.ExitStack() as stack:
        result = []
        for _ in range(count):
            fake = stack.enter_context(
                running_fake_ollama(
                    models=(READY, OTHER), max_loaded_models=1, load_delay=load_delay
                )
            )
            settings = ProxySettings(
                upstream=fake.url,
                max_queue=0,
                ready_model="llama3.2",
                reload_after=RELOAD_AFTER,
                residency_check=0.2,
            )
            registry = CollectorRegistry()
            app = build_app(settings, registry)
            server = ThreadedServer(lambda app=app: app, handler_cancellation=True)
            stack.enter_context(server)
            result.append(Pod(fake, server, app[PROXY], registry))
        for pod in result:
            body = {"model": "llama3.2", "keep_alive": -1, "stream": False}
            assert httpx.post(f"{pod.url}/api/generate", json=body).status_code == 200
            # Ready before any traffic, as the Service (or a router) sends none before.
            assert httpx.get(f"{pod.url}/readyz").status_code == 200
        yield result


@dataclass
class ReadinessPoller:
    """Polls every pod's /readyz in rounds from its own thread, as kubelets do."""

    urls: list[str]
    rounds: list[list[int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> ReadinessPoller:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10.0)

    def _poll(self) -> None:
        with httpx.Client(timeout=3.0) as http:
            while not self._stop.is_set():
                self.rounds.append([http.get(f"{url}/readyz").status_code for url in self.urls])
                self._stop.wait(0.01)


def _chat(url: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    return httpx.post(f"{url}/api/chat", json=body, timeout=10.0)


def _wait_resident(pods: list[Pod], since: float) -> float:
    """Seconds after ``since`` at which every pod has the ready model loaded again;
    returns once each proxy has also counted its reload (the fake marks the model
    loaded a moment before its answer reaches the proxy)."""
    wait_until(lambda: all(list(p.fake.loaded()) == [READY] for p in pods), what="residency")
    took = time.monotonic() - since
    wait_until(lambda: all(p.reloads("ok") >= 1 for p in pods), what="the reloads counted")
    return took


def test_a_second_model_on_every_pod_never_empties_the_service() -> None:
    """Issue 12's done-means: a second model is requested on every pod at once."""
    with pods(3) as all_pods, ReadinessPoller([p.url for p in all_pods]) as poller:
        wait_until(lambda: len(poller.rounds) >= 3)  # a few rounds before, all ready
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda p: _chat(p.url, OTHER), all_pods))
        ended = time.monotonic()
        assert [a.status_code for a in answers] == [200] * 3
        assert [list(p.fake.loaded()) for p in all_pods] == [[OTHER]] * 3  # all evicted
        took = _wait_resident(all_pods, ended)
        after = len(poller.rounds)
        wait_until(lambda: len(poller.rounds) >= after + 3)  # and a few rounds after
    assert took < BOUND, f"resident again after {took:.2f} s"
    assert len(poller.rounds) > 20
    assert all(min(r) == 200 for r in poller.rounds), "a pod left the Service"
    assert [p.reloads("ok") for p in all_pods] == [1.0] * 3


def test_the_reload_holds_the_slot_so_a_router_sends_requests_elsewhere() -> None:
    with pods(1, load_delay=1.0) as (pod,):
        assert _chat(pod.url, OTHER).status_code == 200
        pod.fake.wait_until(lambda s: s.loading == 1, timeout=5.0)  # the reload
        assert pod.proxy.admission.active == 1  # counted as in flight
        refused = _chat(pod.url, "llama3.2")
        assert refused.status_code == 503 and refused.headers["X-Scaler-Busy"] == "queue-full"
        pod.fake.wait_until(lambda s: s.loading == 0, timeout=5.0)
        assert _chat(pod.url, "llama3.2").json()["load_duration"] < 1_000_000  # warm
        assert httpx.get(f"{pod.url}/readyz").status_code == 200


def test_a_chat_with_the_other_model_right_after_waits_for_no_reload() -> None:
    """Follow-ups within ``reload_after`` (Open WebUI's title and tags) find the other
    model still loaded: no load back and forth."""
    with pods(1) as (pod,):
        for _ in range(3):
            assert _chat(pod.url, OTHER).status_code == 200
        assert list(pod.fake.loaded()) == [OTHER] and pod.reloads("ok") == 0
        _wait_resident([pod], time.monotonic())
        assert pod.reloads("ok") == 1


def test_a_draining_proxy_loads_nothing_more() -> None:
    with pods(1) as (pod,):
        pod.server.call(pod.proxy.drain)
        assert _chat(pod.fake.url, OTHER).status_code == 200  # evicts, past the proxy
        # Nothing may happen, so there is no state to wait for: give a reload the time it
        # would take (a check, the wait, a load), then look.
        time.sleep(0.2 + RELOAD_AFTER + LOAD_DELAY + 0.3)
        assert list(pod.fake.loaded()) == [OTHER]
        assert pod.reloads("ok") + pod.reloads("error") == 0
