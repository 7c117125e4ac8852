"""What a draining proxy does with the requests waiting in its queue (issue 13, point 5;
``--drain-queued``, docs/proxy.md "Drain").

``refuse`` (the default, behind a router): each queued request gets 503 with
``X-Scaler-Busy: draining`` and ``Retry-After`` when the drain begins, not a 502 after
it, and the router sends it to another pod. ``serve`` (the seed's stack, where Open
WebUI shows a 503 as the chat's error): the queued requests keep their places and are
answered as the slot frees up, within ``drain_timeout``; new arrivals are refused, and
what still waits at the timeout gets the same 503. Either way the answer holding the
slot streams to its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from scaler.proxy.forward import BUSY_HEADER
from scaler.proxy.handlers import Proxy
from scaler.proxy.settings import ProxySettings
from tests.support.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.support.proxy_in_loop import proxy_in_loop
from tests.support.waits import until

Answer = tuple[int, dict[str, str], bytes]


def chat_body(tokens: int) -> dict[str, Any]:
    message = {"role": "user", "content": "hi"}
    options = {"num_predict": tokens}
    return {"model": "llama3.2", "messages": [message], "stream": True, "options": options}


async def chat(http: aiohttp.ClientSession, url: str, tokens: int = 40) -> Answer:
    async with http.post(url + "/api/chat", json=chat_body(tokens)) as response:
        return response.status, dict(response.headers), await response.read()


def refused_as_draining(answer: Answer, retry_after: str = "7") -> None:
    status, headers, _ = answer
    assert status == 503
    assert headers[BUSY_HEADER] == "draining"
    assert headers["Retry-After"] == retry_after


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def settled(proxy: Proxy, registry: CollectorRegistry) -> None:
    """Nothing held or queued, and the gauges the controller scales on say so."""
    assert (proxy.admission.active, proxy.admission.queued) == (0, 0)
    assert sample(registry, "ollama_proxy_queue_depth") == 0
    assert sample(registry, "ollama_proxy_requests_in_flight") == 0


@dataclass(frozen=True)
class HeldAndQueued:
    """A proxy with its one slot held by an answer and two requests queued behind it."""

    url: str
    proxy: Proxy
    registry: CollectorRegistry
    http: aiohttp.ClientSession
    fake: RunningFakeOllama
    held: asyncio.Task[Answer]
    queued: list[asyncio.Task[Answer]]


@asynccontextmanager
async def held_and_two_queued(
    *, held: int, queued: int, tokens_per_second: float, **settings: Any
) -> AsyncIterator[HeldAndQueued]:
    """``held`` and ``queued``: the tokens of the answers, at ``tokens_per_second``."""
    registry = CollectorRegistry()
    given = {"parallel": 1, "max_queue": 4, "retry_after": 7, **settings}
    with running_fake_ollama(tokens=400, tokens_per_second=tokens_per_second) as fake:
        async with (
            proxy_in_loop(ProxySettings(upstream=fake.url, **given), registry) as served,
            aiohttp.ClientSession() as http,
        ):
            url, proxy = served.url, served.proxy
            holding = asyncio.create_task(chat(http, url, held))
            await until(lambda: fake.stats().active == 1)
            waiting = [asyncio.create_task(chat(http, url, queued)) for _ in range(2)]
            await until(lambda: proxy.admission.queued == 2)
            yield HeldAndQueued(url, proxy, registry, http, fake, holding, waiting)


@pytest.mark.parametrize(
    "drain_queued", [pytest.param({}, id="default"), pytest.param({"drain_queued": "refuse"})]
)
async def test_refuse_gives_the_queued_an_early_busy_503_while_the_held_answer_finishes(
    drain_queued: dict[str, str],
) -> None:
    async with held_and_two_queued(
        held=40, queued=40, tokens_per_second=20.0, drain_timeout=30.0, **drain_queued
    ) as rig:  # ~2 s answers
        drain = asyncio.create_task(rig.proxy.drain())
        for answer in await asyncio.wait_for(asyncio.gather(*rig.queued), 1.0):
            refused_as_draining(answer)
        assert not rig.held.done()  # the held answer runs on
        status, _, body = await rig.held
        assert status == 200 and body.count(b"\n") == 41  # 40 tokens and the end
        await asyncio.wait_for(drain, 5.0)
        settled(rig.proxy, rig.registry)
        assert sample(rig.registry, "ollama_proxy_rejected_total", path="/api/chat") == 2


async def test_serve_answers_the_queued_after_the_held_one_and_refuses_new_arrivals() -> None:
    async with held_and_two_queued(
        held=25, queued=5, tokens_per_second=50.0, drain_timeout=30.0, drain_queued="serve"
    ) as rig:  # the held answer ~0.5 s
        drain = asyncio.create_task(rig.proxy.drain())
        refused_as_draining(await asyncio.wait_for(chat(rig.http, rig.url), 1.0))  # a new one
        assert not rig.held.done() and not any(q.done() for q in rig.queued)
        answers = [await asyncio.wait_for(t, 10.0) for t in [rig.held, *rig.queued]]
        assert [(status, body.count(b"\n")) for status, _, body in answers] == [
            (200, 26),
            (200, 6),
            (200, 6),
        ]
        await asyncio.wait_for(drain, 5.0)
        assert rig.fake.stats().served == 3 and rig.fake.stats().max_active_seen == 1
        settled(rig.proxy, rig.registry)
        assert sample(rig.registry, "ollama_proxy_rejected_total", path="/api/chat") == 1
        ok = sample(rig.registry, "ollama_proxy_requests_total", path="/api/chat", code="200")
        assert ok == 3


async def test_serve_refuses_what_still_waits_at_the_drain_timeout() -> None:
    async with held_and_two_queued(
        held=400, queued=5, tokens_per_second=20.0, drain_timeout=0.2, drain_queued="serve"
    ) as rig:  # the held answer ~20 s: past the timeout
        drain = asyncio.create_task(rig.proxy.drain())
        for answer in await asyncio.wait_for(asyncio.gather(*rig.queued), 5.0):
            refused_as_draining(answer)  # an answer, not a reset
        await asyncio.wait_for(drain, 1.0)  # the drain ends at its timeout
        assert rig.proxy.admission.queued == 0 and not rig.held.done()
        assert sample(rig.registry, "ollama_proxy_rejected_total", path="/api/chat") == 2
        rig.held.cancel()  # the held answer's client leaves; its slot comes back
        await until(lambda: rig.proxy.admission.active == 0)
        settled(rig.proxy, rig.registry)
        assert rig.fake.stats().served == 0
