"""A draining proxy refuses what waits in its queue at once (issue 13, point 5): a
queued request gets 503 with ``X-Scaler-Busy: draining`` and ``Retry-After`` when the
drain begins, not a 502 after it; the answer holding the slot streams to its end."""

from __future__ import annotations

import asyncio

import aiohttp

from scaler.proxy.forward import BUSY_HEADER
from scaler.proxy.settings import ProxySettings
from tests.support.fake_ollama import running_fake_ollama
from tests.support.proxy_in_loop import proxy_in_loop
from tests.support.waits import until

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def chat(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], bytes]:
    async with http.post(url + "/api/chat", json=CHAT) as response:
        return response.status, dict(response.headers), await response.read()


async def test_queued_requests_get_an_early_busy_503_while_the_held_answer_finishes() -> None:
    settings = {"parallel": 1, "max_queue": 4, "drain_timeout": 30.0, "retry_after": 7}
    with running_fake_ollama(tokens=40, tokens_per_second=20.0) as fake:  # ~2 s answers
        async with (
            proxy_in_loop(ProxySettings(upstream=fake.url, **settings)) as served,
            aiohttp.ClientSession() as http,
        ):
            url, proxy = served.url, served.proxy
            streaming = asyncio.create_task(chat(http, url))
            await until(lambda: fake.stats().active == 1)
            queued = [asyncio.create_task(chat(http, url)) for _ in range(2)]
            await until(lambda: proxy.admission.queued == 2)
            drain = asyncio.create_task(proxy.drain())
            for status, headers, _ in await asyncio.wait_for(asyncio.gather(*queued), 1.0):
                assert status == 503
                assert headers[BUSY_HEADER] == "draining"
                assert headers["Retry-After"] == "7"
            assert not streaming.done()  # the held answer runs on
            status, _, body = await streaming
            assert status == 200 and body.count(b"\n") == 41  # 40 tokens and the end
            await asyncio.wait_for(drain, 5.0)
            assert (proxy.admission.active, proxy.admission.queued) == (0, 0)
