"""Every inference path Ollama serves takes a slot in ``scaler proxy`` (issue 17, fix 2).

``/v1/messages`` (Anthropic), ``/v1/images/generations``, ``/v1/images/edits`` and
``/v1/audio/transcriptions`` used to pass through as ``other``: outside the queue, the
slots and the scaling signal. Each family is shown queued behind a request holding
the only slot, answered, counted under its own ``path`` label, with the gauges back
to 0 and its body (multipart too) reaching Ollama byte for byte. An unknown POST whose
JSON body names a ``model`` is inference too (label ``other``); one that does not
passes straight through, its body read within the same bounds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from scaler.proxy.settings import ProxySettings
from tests.support.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.support.inference_cases import CASES, HELLO, MODEL, SLOW, Case
from tests.support.proxy_in_loop import InLoop, proxy_in_loop
from tests.support.waits import until


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def slot_held(
    served: InLoop, fake: RunningFakeOllama, http: aiohttp.ClientSession
) -> AsyncIterator[None]:
    """The proxy's only slot held by a slow chat for the block; then the fake turns
    fast and the chat's client leaves, freeing the slot for what waits."""

    async def blocker() -> None:
        body = {"model": MODEL, "messages": HELLO}
        async with http.post(served.url + "/api/chat", json=body) as response:
            await response.read()

    holding = asyncio.create_task(blocker())
    await until(lambda: fake.stats().active == 1)
    try:
        yield
    finally:
        fake.configure(tokens=5, tokens_per_second=1e6)
        holding.cancel()
        await asyncio.gather(holding, return_exceptions=True)


@asynccontextmanager
async def one_slot_proxy(
    registry: CollectorRegistry,
) -> AsyncIterator[tuple[RunningFakeOllama, InLoop, aiohttp.ClientSession]]:
    """A proxy of one slot (and a queue) over a fake Ollama whose answers last 10 s."""
    with running_fake_ollama(**SLOW) as fake:
        settings = ProxySettings(upstream=fake.url, parallel=1, max_queue=4)
        async with proxy_in_loop(settings, registry) as served, aiohttp.ClientSession() as http:
            yield fake, served, http


@pytest.mark.parametrize("case", CASES)
async def test_each_inference_family_waits_for_a_slot_and_is_counted(case: Case) -> None:
    registry = CollectorRegistry()
    async with one_slot_proxy(registry) as (fake, served, http):

        async def send() -> int:
            headers = {"Content-Type": case.content_type}
            url = served.url + case.path
            async with http.post(url, data=case.body, headers=headers) as response:
                await response.read()
                return response.status

        async with slot_held(served, fake, http):
            sent = asyncio.create_task(send())
            await until(lambda: served.proxy.admission.queued == 1)
        assert await sent == case.status
        await until(lambda: served.proxy.admission.active == 0)
    assert fake.requests[-1].raw == case.body  # byte for byte, multipart included
    code = str(case.status)
    assert sample(registry, "ollama_proxy_requests_total", path=case.label, code=code) == 1
    waits = sample(registry, "ollama_proxy_queue_wait_seconds_count", path=case.label)
    assert waits == 1
    assert sample(registry, "ollama_proxy_queue_depth") == 0
    assert sample(registry, "ollama_proxy_requests_in_flight") == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"\x00\xff not json", "application/octet-stream", id="not-json"),
        pytest.param(b'{"query": "weather"}', "application/json", id="no-model"),
        pytest.param(b'{"model": 3}', "application/json", id="model-not-a-string"),
        pytest.param(b'["model"]', "application/json", id="not-an-object"),
    ],
)
async def test_an_unknown_post_naming_no_model_passes_straight_through(
    body: bytes, content_type: str
) -> None:
    registry = CollectorRegistry()
    async with one_slot_proxy(registry) as (fake, served, http), slot_held(served, fake, http):
        headers = {"Content-Type": content_type}
        async with http.post(served.url + "/api/me", data=body, headers=headers) as answer:
            assert answer.status == 404  # the fake's: it knows no /api/me
        assert served.proxy.admission.queued == 0
    assert fake.requests[-1].raw == body
    assert sample(registry, "ollama_proxy_requests_total", path="other", code="404") == 1
    assert sample(registry, "ollama_proxy_queue_wait_seconds_count", path="other") == 0


async def test_an_unknown_posts_body_is_read_within_the_inference_bounds() -> None:
    registry = CollectorRegistry()
    with running_fake_ollama() as fake:
        settings = ProxySettings(upstream=fake.url, max_body=1024)
        async with proxy_in_loop(settings, registry) as served, aiohttp.ClientSession() as http:
            big = json.dumps({"model": MODEL, "pad": "x" * 2048}).encode()
            async with http.post(served.url + "/api/future", data=big) as answer:
                assert answer.status == 413
                assert "max_body" in (await answer.json())["error"]
    assert fake.requests == []
    assert sample(registry, "ollama_proxy_requests_total", path="other", code="413") == 1
