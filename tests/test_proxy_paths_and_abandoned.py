"""Two small gaps in what the proxy counts and classifies (issue 13, point 9):

- a request whose client leaves (while its request waits in the queue, or while its
  answer streams) is counted in ``ollama_proxy_requests_total`` with code 499;
- ``/api/pull/`` and ``/api//pull`` are model management as ``/api/pull`` is (and
  ``/api//chat`` is inference): paths are classified, counted and forwarded in their
  normal form, repeated slashes collapsed and no trailing slash.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from scaler.proxy.routes import normal_path
from scaler.proxy.settings import ProxySettings
from tests.support.counting_upstream import ANSWER, CountingUpstream
from tests.support.fake_ollama import running_fake_ollama
from tests.support.proxy_in_loop import proxy_in_loop
from tests.support.waits import until

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def requests(registry: CollectorRegistry, path: str, code: str) -> float:
    labels = {"path": path, "code": code}
    return registry.get_sample_value("ollama_proxy_requests_total", labels) or 0.0


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("/api/pull", "/api/pull"),
        ("/api/pull/", "/api/pull"),
        ("/api//pull", "/api/pull"),
        ("//api///pull//", "/api/pull"),
        ("/", "/"),
        ("//", "/"),
        ("/api/blobs/sha256:ab/", "/api/blobs/sha256:ab"),
    ],
)
def test_normal_path_collapses_slashes_and_drops_a_trailing_one(raw: str, normal: str) -> None:
    assert normal_path(raw) == normal


async def test_a_client_that_leaves_queued_or_streaming_is_counted_499() -> None:
    registry = CollectorRegistry()
    settings = {"parallel": 1, "max_queue": 4}
    with running_fake_ollama(tokens=200, tokens_per_second=50.0) as fake:  # ~4 s answers
        async with (
            proxy_in_loop(ProxySettings(upstream=fake.url, **settings), registry) as served,
            aiohttp.ClientSession() as http,
        ):
            proxy = served.proxy

            async def chat() -> None:
                async with http.post(served.url + "/api/chat", json=CHAT) as response:
                    await response.read()

            streaming = asyncio.create_task(chat())
            await until(lambda: fake.stats().active == 1)
            queued = asyncio.create_task(chat())
            await until(lambda: proxy.admission.queued == 1)
            queued.cancel()  # the client leaves while waiting for the slot
            await until(lambda: requests(registry, "/api/chat", "499") == 1)
            assert proxy.admission.queued == 0
            streaming.cancel()  # the client leaves while the answer streams
            await until(lambda: requests(registry, "/api/chat", "499") == 2)
            await until(lambda: (proxy.admission.active, fake.stats().active) == (0, 0))
            await asyncio.gather(streaming, queued, return_exceptions=True)


async def test_slashes_do_not_hide_model_management_or_inference() -> None:
    registry = CollectorRegistry()
    async with (
        CountingUpstream() as serving,
        CountingUpstream() as writer,
        proxy_in_loop(
            ProxySettings(upstream=serving.url, management_upstream=writer.url, max_queue=0),
            registry,
        ) as served,
        aiohttp.ClientSession() as http,
    ):
        for path in ("/api/pull/", "/api//pull", "/api/pull"):
            async with http.post(served.url + path, json={"model": "x"}) as response:
                assert (response.status, await response.read()) == (200, ANSWER)
        async with http.post(served.url + "/api//chat/?x=1", json=CHAT) as response:
            assert response.status == 200
    assert [seen.path for seen in writer.seen] == ["/api/pull"] * 3  # the normal form
    assert [seen.path for seen in serving.seen] == ["/api/chat?x=1"]
    assert requests(registry, "/api/pull", "200") == 3
    assert requests(registry, "/api/chat", "200") == 1
    assert (
        registry.get_sample_value("ollama_proxy_queue_wait_seconds_count", {"path": "/api/chat"})
        == 1
    )  # admitted as inference, through the slot
