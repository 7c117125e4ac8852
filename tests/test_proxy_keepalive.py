"""Kept-alive connections from the proxy to Ollama, and what happens when Ollama has
closed one: the request goes once more on a new connection, never twice more, and a
body that cannot be sent twice never rides a kept-alive connection.

The upstream here numbers its connections (``tests.support.counting_upstream``); the proxy runs
in the test's loop with handler cancellation on, as ``scaler proxy`` does.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from scaler.proxy.forward import REPLAYABLE_BODY
from scaler.proxy.handlers import Proxy
from scaler.proxy.settings import ProxySettings
from tests.support.counting_upstream import ANSWER, CountingUpstream, HangUp, Seen
from tests.support.proxy_in_loop import proxy_in_loop

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}
CHAT_SIZE = len(json.dumps(CHAT))


@asynccontextmanager
async def running_proxy(settings: ProxySettings) -> AsyncIterator[tuple[str, Proxy]]:
    async with proxy_in_loop(settings) as served:
        yield served.url, served.proxy


async def _post(
    http: aiohttp.ClientSession, url: str, body: object, path: str = "/api/chat"
) -> tuple[int, bytes]:
    raw = io.BytesIO(json.dumps(body).encode())  # sized, so it goes with a Content-Length
    async with http.post(url + path, data=raw) as response:
        return response.status, await response.read()


async def test_answers_read_to_the_end_leave_one_connection_for_the_next() -> None:
    async with (
        CountingUpstream() as upstream,
        running_proxy(ProxySettings(upstream=upstream.url)) as (url, _),
        aiohttp.ClientSession() as http,
    ):
        for _ in range(5):
            assert await _post(http, url, CHAT) == (200, ANSWER)
    assert [seen.connection for seen in upstream.seen] == [1, 1, 1, 1, 1]


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_a_request_on_a_connection_ollama_closed_goes_again_on_a_new_one(
    how: HangUp,
) -> None:
    async with (
        CountingUpstream() as upstream,
        running_proxy(ProxySettings(upstream=upstream.url)) as (url, proxy),
        aiohttp.ClientSession() as http,
    ):
        assert await _post(http, url, CHAT) == (200, ANSWER)
        upstream.hang_up(1, how=how)
        assert await _post(http, url, CHAT) == (200, ANSWER)
        assert (proxy.admission.active, proxy.admission.queued) == (0, 0)
    assert upstream.seen == [
        Seen(1, "/api/chat", CHAT_SIZE, answered=True),
        Seen(1, "/api/chat", CHAT_SIZE, answered=False),  # pooled, closed: not served
        Seen(2, "/api/chat", CHAT_SIZE, answered=True),  # the same request, once more
    ]


async def test_a_request_closed_unanswered_twice_is_a_502_after_one_resend() -> None:
    async with (
        CountingUpstream() as upstream,
        running_proxy(ProxySettings(upstream=upstream.url)) as (url, proxy),
        aiohttp.ClientSession() as http,
    ):
        upstream.hang_up(3, how="fin")
        status, body = await _post(http, url, CHAT)
        assert status == 502 and "cannot reach Ollama" in json.loads(body)["error"]
        assert (proxy.admission.active, proxy.admission.queued) == (0, 0)
    assert [(s.connection, s.answered) for s in upstream.seen] == [(1, False), (2, False)]


LARGE = {**CHAT, "messages": [{"role": "user", "content": "x" * REPLAYABLE_BODY}]}
LARGE_SIZE = len(json.dumps(LARGE))


async def _large_after_a_hang_up(path: str) -> tuple[list[int], list[tuple[int, int, bool]]]:
    """A small request (leaves connection 1 idle), a hang-up on the next request, then
    the large body twice and the small one: the statuses and what the upstream saw."""
    async with (
        CountingUpstream() as upstream,
        running_proxy(ProxySettings(upstream=upstream.url)) as (url, _),
        aiohttp.ClientSession() as http,
    ):
        statuses = [(await _post(http, url, CHAT))[0]]
        upstream.hang_up(1, how="fin")
        statuses += [(await _post(http, url, LARGE, path))[0] for _ in range(2)]
        statuses.append((await _post(http, url, CHAT))[0])
    return statuses, [(s.connection, s.size, s.answered) for s in upstream.seen]


async def test_a_passthrough_body_too_large_to_resend_goes_alone_on_a_new_connection_once() -> None:
    statuses, seen = await _large_after_a_hang_up("/api/show")
    assert statuses == [200, 502, 200, 200]  # not sent a second time
    assert seen == [
        (1, CHAT_SIZE, True),
        (2, LARGE_SIZE, False),
        (3, LARGE_SIZE, True),
        (1, CHAT_SIZE, True),  # the pooled connection again
    ]


async def test_an_inference_body_over_one_mib_is_read_whole_so_it_can_go_again() -> None:
    statuses, seen = await _large_after_a_hang_up("/api/chat")  # read before the slot
    assert statuses == [200, 200, 200, 200]
    assert seen == [
        (1, CHAT_SIZE, True),
        (1, LARGE_SIZE, False),  # pooled, closed: not served
        (2, LARGE_SIZE, True),  # the same request, once more
        (2, LARGE_SIZE, True),
        (2, CHAT_SIZE, True),
    ]


async def test_model_management_to_the_remote_writer_opens_a_connection_each_time() -> None:
    async with (
        CountingUpstream() as serving,
        CountingUpstream() as writer,
        running_proxy(ProxySettings(upstream=serving.url, management_upstream=writer.url)) as (
            url,
            _,
        ),
        aiohttp.ClientSession() as http,
    ):
        for _ in range(3):
            async with http.delete(url + "/api/delete", json={"model": "x"}) as response:
                assert response.status == 200
    assert [seen.connection for seen in writer.seen] == [1, 2, 3]
    assert serving.seen == []
