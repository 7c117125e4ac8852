"""A user's journey through the real Open WebUI, in front of the serving path as the
manifests deploy it (tests/e2e/stack.py), checking after each step what the user sees
and what the serving path's metrics say.

The tests share one stack (starting Open WebUI takes ~10 s) and run in file order;
each leaves it idle (every gauge back at 0), which the next one checks first.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
import pytest

from tests.e2e.serving_metrics import Counts, scrape
from tests.e2e.stack import PODS, READY_MODEL, ROUTER_QUEUE, Stack, running_stack
from tests.e2e.webui import WebUI
from tests.support.fake_ollama import RunningFakeOllama
from tests.support.fake_ollama_shapes import answer_text

IDLE_TIMEOUT = 30.0
ROUTER_COUNT = "scaler_router_requests_total"
PROXY_COUNT = "ollama_proxy_requests_total"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("e2e")) as running:
        yield running


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    """The admin's session: the first sign-up on a new install is the admin."""

    async def sign_up() -> tuple[str, str]:
        async with aiohttp.ClientSession(trust_env=False) as http:
            ui = WebUI(http, stack.open_webui)
            role = await ui.sign_up_admin()
            return role, ui.headers["Authorization"]

    role, header = asyncio.run(sign_up())
    assert role == "admin"
    return header


class Journey:
    """One test's view: Open WebUI as the admin, and the serving path's metrics."""

    def __init__(self, stack: Stack, http: aiohttp.ClientSession, token: str) -> None:
        self.stack = stack
        self.http = http
        self.ui = WebUI(http, stack.open_webui)
        self.ui.headers = {"Authorization": token}

    async def counts(self) -> tuple[Counts, Counts]:
        """Request counts: the router's, the proxies' (summed)."""
        _, router = await scrape(self.http, [self.stack.router])
        _, proxies = await scrape(self.http, self.stack.proxies)
        return router, proxies

    async def idle(self) -> None:
        """Until every queue and in-flight gauge of the router and the proxies is 0."""

        deadline = time.monotonic() + IDLE_TIMEOUT
        while True:
            gauges, _ = await scrape(self.http, [self.stack.router, *self.stack.proxies])
            if all(value == 0 for value in gauges.values()):
                return
            assert time.monotonic() < deadline, f"not idle after {IDLE_TIMEOUT} s: {gauges}"
            await asyncio.sleep(0.1)

    def pod_calls(self, path: str) -> int:
        return sum(1 for pod in self.stack.pods for r in pod.requests if r.path == path)


@pytest.fixture
async def journey(stack: Stack, token: str) -> AsyncIterator[Journey]:
    for pod in stack.pods:
        pod.configure(tokens=40, tokens_per_second=40.0)
    async with aiohttp.ClientSession(trust_env=False) as http:
        walk = Journey(stack, http, token)
        await walk.idle()
        yield walk
        await walk.idle()


async def test_models_and_a_streamed_chat(journey: Journey) -> None:
    assert await journey.ui.model_ids() == [READY_MODEL]
    router_before, proxies_before = await journey.counts()

    answer = await journey.ui.stream_chat(READY_MODEL, "Why is the sky blue?")

    assert answer.status == 200 and answer.error is None
    assert answer.content == answer_text(40)  # the fake's 40 tokens, every one arrived
    await journey.idle()
    router, proxies = await journey.counts()
    assert router.since(router_before) == {(ROUTER_COUNT, "/api/chat", "200"): 1}
    assert proxies.since(proxies_before) == {(PROXY_COUNT, "/api/chat", "200"): 1}


async def test_anthropic_messages_are_admitted(journey: Journey) -> None:
    """Issue 17, point 2: Open WebUI forwards ``/v1/messages``; the router queues it and
    the proxy holds a slot for it, each counting it under its own path label (it went
    round both as ``other`` before). ``max_tokens`` bounds the answer, as in Ollama."""
    router_before, proxies_before = await journey.counts()

    message = await journey.ui.anthropic_message(READY_MODEL, "hello", max_tokens=16)

    assert message["content"][0]["text"] == answer_text(16)
    assert message["stop_reason"] == "max_tokens"
    router, proxies = await journey.counts()
    assert router.since(router_before) == {(ROUTER_COUNT, "/v1/messages", "200"): 1}
    assert proxies.since(proxies_before) == {(PROXY_COUNT, "/v1/messages", "200"): 1}


async def test_a_new_chat_makes_the_calls_the_manifests_choose(journey: Journey) -> None:
    """The browser asks for a title, tags and follow-ups; with the manifests' settings
    Open WebUI makes two calls to Ollama: the answer and a title bounded to 128 tokens
    (issue 17, point 4: with its defaults, three or four)."""
    before = [len(pod.requests) for pod in journey.stack.pods]

    started = await journey.ui.start_chat(READY_MODEL, "Why is the sky blue?")
    saved = await journey.ui.saved_answer(started)
    await journey.idle()

    assert saved["content"] == answer_text(40)
    calls = [r for pod, n in zip(journey.stack.pods, before, strict=True) for r in pod.requests[n:]]
    chats = [r.body for r in calls if r.path == "/api/chat"]
    assert len(chats) == 2, [c.get("messages", [{}])[-1].get("content", "")[:60] for c in chats]
    limits = sorted(c.get("options", {}).get("num_predict", 0) for c in chats)
    assert limits == [0, 128]  # the answer unbounded, the title bounded


async def test_more_chats_than_slots_and_queue(journey: Journey) -> None:
    """Two pods of one slot and a router queue of two: four chats are answered, the
    others see the router's 503 text as the chat's error, at once, not retried."""
    for pod in journey.stack.pods:
        pod.configure(tokens_per_second=10.0)  # 4 s answers: all six overlap
    router_before, _ = await journey.counts()
    served_before = [pod.served for pod in journey.stack.pods]

    answers = await asyncio.gather(
        *(journey.ui.stream_chat(READY_MODEL, f"question {i}") for i in range(6))
    )

    answered = [a for a in answers if a.error is None]
    refused = [a for a in answers if a.error is not None]
    assert len(answered) == PODS + ROUTER_QUEUE
    assert all(a.content == answer_text(40) for a in answered)
    assert len(refused) == 6 - PODS - ROUTER_QUEUE
    assert all("server busy" in str(a.error) for a in refused), refused
    # Open WebUI sends them over its pooled connections; the router binds each to a
    # free slot, so both pods answer two (issue 17, point 5).
    pods = zip(journey.stack.pods, served_before, strict=True)
    assert [pod.served - before for pod, before in pods] == [2, 2]
    await journey.idle()
    router, _ = await journey.counts()
    assert router.since(router_before) == {
        (ROUTER_COUNT, "/api/chat", "200"): PODS + ROUTER_QUEUE,
        (ROUTER_COUNT, "/api/chat", "503"): 6 - PODS - ROUTER_QUEUE,
    }


async def _fill_the_slots(journey: Journey) -> list[asyncio.Task[object]]:
    """Both pods busy for ~4 s with API chats, so the next request queues."""
    for pod in journey.stack.pods:
        pod.configure(tokens_per_second=10.0)
    busy = [asyncio.create_task(journey.ui.stream_chat(READY_MODEL, "busy")) for _ in range(PODS)]
    await _until(lambda: sum(pod.active for pod in journey.stack.pods) == PODS, "slots full")
    return busy


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.05)


async def _until_queued(journey: Journey, depth: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        gauges, _ = await scrape(journey.http, [journey.stack.router])
        if gauges["scaler_router_queue_depth"] >= depth:
            return
        assert time.monotonic() < deadline, f"the router's queue did not reach {depth}"
        await asyncio.sleep(0.05)


async def test_stop_while_queued(journey: Journey) -> None:
    """Stop on a queued answer closes Open WebUI's request: it leaves the router's queue
    and never reaches Ollama."""
    busy = await _fill_the_slots(journey)
    router_before, _ = await journey.counts()
    chats_before = journey.pod_calls("/api/chat")
    started = await journey.ui.start_chat(READY_MODEL, "a queued question")
    await _until_queued(journey, 2)  # the answer and its title, both waiting

    await journey.ui.stop(started)

    await asyncio.gather(*busy)
    await journey.idle()
    router, _ = await journey.counts()
    # The answer left the queue (499, client closed); the title, which Stop does not
    # reach, was served after the busy chats.
    assert router.since(router_before) == {
        (ROUTER_COUNT, "/api/chat", "499"): 1,
        (ROUTER_COUNT, "/api/chat", "200"): PODS + 1,
    }
    assert journey.pod_calls("/api/chat") == chats_before + 1


async def test_stop_while_streaming(journey: Journey) -> None:
    """Stop on a streaming answer closes the connection through the router and the
    proxy to Ollama, which cancels the generation (the fake counts it cancelled)."""
    for pod in journey.stack.pods:
        pod.configure(tokens_per_second=10.0)
    cancelled_before = sum(pod.cancelled for pod in journey.stack.pods)
    router_before, proxies_before = await journey.counts()
    started = await journey.ui.start_chat(READY_MODEL, "a long answer")
    await _until(lambda: sum(pod.active for pod in journey.stack.pods) == 2, "answer and title")

    await journey.ui.stop(started)

    await journey.idle()
    assert sum(pod.cancelled for pod in journey.stack.pods) == cancelled_before + 1
    router, proxies = await journey.counts()
    assert router.since(router_before) == {
        (ROUTER_COUNT, "/api/chat", "499"): 1,
        (ROUTER_COUNT, "/api/chat", "200"): 1,
    }
    assert proxies.since(proxies_before) == {
        (PROXY_COUNT, "/api/chat", "499"): 1,
        (PROXY_COUNT, "/api/chat", "200"): 1,
    }


async def test_an_api_client_leaving_while_queued_is_not_passed_on(journey: Journey) -> None:
    """Issue 17, point 6, as docs/proxy.md states it: Open WebUI keeps its own request
    to the router open when its API client hangs up before the first token, so the
    request stays queued, reaches Ollama when its turn comes and holds that slot until
    its first token, when Open WebUI finds the client gone and closes (499)."""
    router_before, _ = await journey.counts()
    busy = await _fill_the_slots(journey)
    chats_before = journey.pod_calls("/api/chat")
    cancelled_before = sum(pod.cancelled for pod in journey.stack.pods)
    leaving = asyncio.create_task(journey.ui.stream_chat(READY_MODEL, "I will not wait"))
    await _until_queued(journey, 1)

    leaving.cancel()  # the client closes its connection to Open WebUI
    await asyncio.gather(leaving, return_exceptions=True)

    await asyncio.gather(*busy)
    await journey.idle()
    assert journey.pod_calls("/api/chat") == chats_before + 1  # it reached Ollama
    assert sum(pod.cancelled for pod in journey.stack.pods) == cancelled_before + 1
    router, _ = await journey.counts()
    assert router.since(router_before) == {
        (ROUTER_COUNT, "/api/chat", "200"): PODS,
        (ROUTER_COUNT, "/api/chat", "499"): 1,
    }


def _management(since: dict[tuple[str, str, str], int]) -> dict[tuple[str, str, str], int]:
    """The counts of calls that change the models (not the model list's reads)."""
    return {key: n for key, n in since.items() if key[1] not in ("/api/tags", "/api/ps")}


async def test_pull_then_delete(journey: Journey) -> None:
    """Pull and delete reach the models' writer; the serving pods, which share its
    volume, list the pulled model at once and forget the deleted one."""
    router_before, proxies_before = await journey.counts()

    progress = await journey.ui.pull("qwen2.5:0.5b")

    assert progress[-1] == {"status": "success"}
    assert "qwen2.5:0.5b" in await journey.ui.model_ids()
    await journey.ui.delete("qwen2.5:0.5b")
    assert await journey.ui.model_ids() == [READY_MODEL]
    writer_calls = [(r.method, r.path) for r in journey.stack.writer.requests]
    assert ("POST", "/api/pull") in writer_calls and ("DELETE", "/api/delete") in writer_calls
    router, proxies = await journey.counts()
    assert _management(router.since(router_before)) == {
        (ROUTER_COUNT, "/api/pull", "200"): 1,
        (ROUTER_COUNT, "/api/delete", "200"): 1,
    }
    assert _management(proxies.since(proxies_before)) == {}


async def test_a_gguf_upload_is_usable_on_a_serving_pod(journey: Journey) -> None:
    """Issue 17, point 1: the blob and the create both reach the writer, and the model
    it creates answers on a serving pod (the volume is shared)."""
    data = b"GGUF" + bytes(range(256)) * 64
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    router_before, _ = await journey.counts()

    events = await journey.ui.upload_gguf("tiny-upload.gguf", data)

    assert events[-1].get("model_created") == "tiny-upload", events[-3:]
    writer_calls = [(r.method, r.path) for r in journey.stack.writer.requests]
    assert ("POST", f"/api/blobs/{digest}") in writer_calls
    assert ("POST", "/api/create") in writer_calls
    assert "tiny-upload:latest" in await journey.ui.model_ids()
    answer = await journey.ui.stream_chat("tiny-upload:latest", "hello")
    assert answer.error is None and answer.content == answer_text(40)
    served_by = [p for p in journey.stack.pods if _asked(p, "tiny-upload:latest")]
    assert len(served_by) == 1
    await journey.ui.delete("tiny-upload:latest")
    router, _ = await journey.counts()
    assert _management(router.since(router_before)) == {
        (ROUTER_COUNT, "other", "201"): 1,  # the blob (one label for every digest)
        (ROUTER_COUNT, "/api/create", "200"): 1,
        (ROUTER_COUNT, "/api/chat", "200"): 1,
        (ROUTER_COUNT, "/api/delete", "200"): 1,
    }
    await _until(lambda: all(_has_ready_model(p) for p in journey.stack.pods), "model back")


def _asked(pod: RunningFakeOllama, model: str) -> bool:
    return any(isinstance(r.body, dict) and r.body.get("model") == model for r in pod.requests)


def _has_ready_model(pod: RunningFakeOllama) -> bool:
    return READY_MODEL in pod.loaded()


async def test_unload_then_chat(journey: Journey) -> None:
    """Issue 17, point 3: Admin > Unload reaches one pod through the router and
    unloads the ready model there; the pod stays ready (in the Service) and its proxy
    loads the model again once idle, so the next chat is answered at once."""
    router_before, _ = await journey.counts()

    await journey.ui.unload(READY_MODEL)

    unloaded = [p for p in journey.stack.pods if not _has_ready_model(p)]
    assert len(unloaded) == 1
    assert await _ready(journey, journey.stack.proxies[journey.stack.pods.index(unloaded[0])])
    await _until(lambda: _has_ready_model(unloaded[0]), "the ready model loaded again")
    answer = await journey.ui.stream_chat(READY_MODEL, "still there?")
    assert answer.error is None and answer.content == answer_text(40)
    router, _ = await journey.counts()
    assert _management(router.since(router_before)) == {
        (ROUTER_COUNT, "/api/generate", "200"): 1,
        (ROUTER_COUNT, "/api/chat", "200"): 1,
    }


async def _ready(journey: Journey, proxy: str) -> bool:
    async with journey.http.get(proxy + "/readyz") as reply:
        return reply.status == 200
