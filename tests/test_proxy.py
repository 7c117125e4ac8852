"""``scaler proxy`` between the official ``ollama`` client and a faithful fake Ollama.

The fake and the proxy each run in their own thread and loop (the sync client
blocks). The proxy runs with handler cancellation on, as ``scaler proxy`` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import ollama
import pytest
from prometheus_client import CollectorRegistry

from scaler.proxy.app import PROXY, build_app
from scaler.proxy.handlers import Proxy
from scaler.proxy.settings import ProxySettings
from tests.support.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.support.threaded_server import serve_in_thread
from tests.support.waits import until, wait_until

MODEL = "llama3.2"
GENERATE = {"model": MODEL, "prompt": "why is the sky blue?"}  # an empty prompt only loads


@dataclass
class Rig:
    fake: RunningFakeOllama
    url: str
    proxy: Proxy
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def settled_sample(self, name: str, **labels: str) -> float:
        """A counter once the proxy has finished its requests: the client can read a
        response's last byte before the handler that sent it records the request."""
        self.wait_idle()
        return wait_until(lambda: self.sample(name, **labels), what=f"{name} {labels}")

    def wait_idle(self) -> None:
        """Until the proxy holds and queues nothing and the fake holds no slot."""

        def idle() -> bool:
            stats, admission = self.fake.stats(), self.proxy.admission
            return (admission.active, admission.queued, stats.active, stats.waiting) == (0,) * 4

        wait_until(idle, what="the proxy and the fake going idle")


@pytest.fixture
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    options = getattr(request, "param", {})
    fake_settings = options.get("fake", {})
    proxy_settings = options.get("proxy", {})
    with running_fake_ollama(**fake_settings) as fake:
        settings = ProxySettings(upstream=fake.url, **proxy_settings)
        registry = CollectorRegistry()
        app = build_app(settings, registry)
        with serve_in_thread(app, handler_cancellation=True) as url:
            yield Rig(fake, url, app[PROXY], registry)


def _chat(stream: bool) -> dict[str, object]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream}


def test_the_official_client_chats_through_the_proxy_streaming_and_not(rig: Rig) -> None:
    with ollama.Client(host=rig.url) as client:
        _chat_everything(client)
    assert rig.settled_sample("ollama_proxy_requests_total", path="/api/pull", code="200") == 1
    assert rig.sample("ollama_proxy_generated_tokens_total", model=MODEL) == 40
    assert rig.sample("ollama_proxy_requests_total", path="/api/chat", code="200") == 1
    assert rig.sample("ollama_proxy_time_to_first_token_seconds_count", path="/api/chat") == 1


def _chat_everything(client: ollama.Client) -> None:
    parts = list(
        client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert len(parts) == 21 and parts[-1].done and parts[-1].eval_count == 20
    assert "".join(p.message.content or "" for p in parts[:-1])
    answer = client.generate(model=MODEL, prompt="hello")
    assert answer.done and answer.response
    assert len(client.embed(model="all-minilm", input=["a", "b"]).embeddings) == 2
    assert {m.model for m in client.list().models} >= {"llama3.2:latest"}
    assert client.show(MODEL).modelfile is not None
    assert any(m.model == "llama3.2:latest" for m in client.ps().models)
    statuses = [p.status for p in client.pull(MODEL, stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"


async def test_the_async_client_streams_through_the_proxy(rig: Rig) -> None:
    async with ollama.AsyncClient(host=rig.url) as client:
        chunks = [part async for part in await client.chat(**_chat(True))]  # type: ignore[arg-type]
        assert chunks[-1].done and chunks[-1].prompt_eval_count is not None
        answer = await client.generate(model=MODEL, prompt="x", stream=False)
        assert answer.done


def test_openai_style_sse_streams_through_unchanged(rig: Rig) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with (
        httpx.Client() as http,
        http.stream(
            "POST",
            f"{rig.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": "Bearer x"},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    chunk = json.loads(events[0].removeprefix("data: "))
    assert chunk["object"] == "chat.completion.chunk"
    assert len(events) >= 21


@pytest.mark.parametrize("rig", [{"fake": {"prefill": 0.4}}], indirect=True)
def test_nothing_reaches_the_client_before_the_first_token(rig: Rig) -> None:
    with httpx.Client(timeout=10) as http:
        started = time.monotonic()
        with http.stream("POST", f"{rig.url}/api/generate", json=GENERATE) as response:
            headers_after = time.monotonic() - started
            assert response.status_code == 200
            lines = list(response.iter_lines())
    assert headers_after >= 0.4  # the proxy did not answer before Ollama did
    assert json.loads(lines[-1])["done"] is True


def _wait_held(rig: Rig, count: int) -> None:
    """Until the proxy holds ``count`` requests (running plus queued)."""
    admission = rig.proxy.admission
    wait_until(lambda: admission.active + admission.queued == count, what=f"{count} held")


@pytest.mark.parametrize(
    "rig", [{"fake": {"tokens_per_second": 20}, "proxy": {"max_queue": 1}}], indirect=True
)
def test_a_full_queue_answers_503_as_the_client_sees_it(rig: Rig) -> None:
    results: list[object] = []

    def chat() -> None:
        with ollama.Client(host=rig.url) as client:
            try:
                results.append(client.chat(**_chat(False)))  # type: ignore[arg-type]
            except ollama.ResponseError as error:
                results.append(error)

    threads = [threading.Thread(target=chat) for _ in range(3)]
    for held, thread in enumerate(threads, start=1):
        thread.start()  # in order: running, queued, refused
        if held < 3:
            _wait_held(rig, held)
    for thread in threads:
        thread.join(10)
    errors = [r for r in results if isinstance(r, ollama.ResponseError)]
    assert len(errors) == 1 and errors[0].status_code == 503
    assert "server busy" in errors[0].error
    assert rig.sample("ollama_proxy_rejected_total", path="/api/chat") == 1
    assert rig.sample("ollama_proxy_requests_total", path="/api/chat", code="503") == 1
    with httpx.Client() as http:  # Retry-After, as HTTP clients expect
        blocker = threading.Thread(target=chat)
        blocker.start()
        _wait_held(rig, 1)
        queued = threading.Thread(target=chat)
        queued.start()
        _wait_held(rig, 2)
        refused = http.post(f"{rig.url}/api/chat", json=_chat(False))
        blocker.join(10)
        queued.join(10)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert refused.json()["error"].startswith("server busy")
    rig.wait_idle()


@pytest.mark.parametrize("rig", [{"fake": {"tokens_per_second": 10}}], indirect=True)
async def test_a_client_that_leaves_while_queued_leaves_the_queue(rig: Rig) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        running = asyncio.create_task(http.post(f"{rig.url}/api/chat", json=_chat(False)))
        await until(lambda: rig.proxy.admission.active == 1)  # it holds the slot
        queued = asyncio.create_task(http.post(f"{rig.url}/api/chat", json=_chat(False)))
        await until(lambda: rig.proxy.admission.queued == 1)
        queued.cancel()
        await asyncio.gather(queued, return_exceptions=True)
        await until(lambda: rig.proxy.admission.queued == 0)
        assert (await running).status_code == 200
    rig.wait_idle()
    assert rig.fake.stats().served == 1  # the one that left never reached Ollama


@pytest.mark.parametrize("rig", [{"fake": {"tokens_per_second": 5}}], indirect=True)
async def test_a_client_that_leaves_while_running_frees_ollamas_slot(rig: Rig) -> None:
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream("POST", f"{rig.url}/api/generate", json=GENERATE) as r,
    ):
        async for _ in r.aiter_lines():
            break  # one token, then hang up
    await until(lambda: rig.fake.stats().cancelled == 1)
    rig.wait_idle()


async def test_a_client_that_leaves_before_the_first_token_frees_ollamas_slot(rig: Rig) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        # The first answer leaves a kept-alive connection, which the next one takes.
        assert (await http.post(f"{rig.url}/api/chat", json=_chat(False))).status_code == 200
        rig.fake.configure(prefill=60.0)  # Ollama silent in a long prefill
        waiting = asyncio.create_task(http.post(f"{rig.url}/api/generate", json=GENERATE))
        await until(lambda: rig.fake.stats().active == 1)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    await until(lambda: rig.fake.stats().cancelled == 1)  # it saw the connection close
    rig.wait_idle()


def test_ollama_down_is_a_502_with_a_json_error(rig: Rig) -> None:
    rig.fake.stop()
    with ollama.Client(host=rig.url) as client, pytest.raises(ollama.ResponseError) as caught:
        client.chat(**_chat(False))  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert "cannot reach Ollama" in caught.value.error
    with httpx.Client() as http:
        assert http.get(f"{rig.url}/api/tags").status_code == 502
        assert http.get(f"{rig.url}/readyz").status_code == 503
    rig.fake.start()
    with httpx.Client() as http:
        assert http.get(f"{rig.url}/readyz").status_code == 200
    assert rig.sample("ollama_proxy_upstream_errors_total", kind="connect") == 2
    rig.wait_idle()


def test_ollama_dying_mid_stream_ends_the_stream_with_an_error(rig: Rig) -> None:
    rig.fake.die_next(after_tokens=3)
    with ollama.Client(host=rig.url) as client, pytest.raises(ollama.ResponseError) as caught:
        for _ in client.chat(**_chat(True)):  # type: ignore[arg-type]
            pass
    assert "Ollama closed the stream" in caught.value.error
    rig.wait_idle()
    assert rig.sample("ollama_proxy_upstream_errors_total", kind="mid_stream") == 1


def test_a_large_request_body_goes_through(rig: Rig) -> None:
    prompt = "x" * (8 * 1024 * 1024)
    with ollama.Client(host=rig.url) as client:
        assert client.generate(model=MODEL, prompt=prompt).done
    body = rig.fake.requests[-1].body
    assert isinstance(body, dict) and len(body["prompt"]) == len(prompt)


def test_model_management_goes_to_its_own_upstream() -> None:
    with running_fake_ollama() as serving, running_fake_ollama() as writer:
        settings = ProxySettings(upstream=serving.url, management_upstream=writer.url)
        with (
            serve_in_thread(build_app(settings), handler_cancellation=True) as url,
            ollama.Client(host=url) as client,
        ):
            assert client.pull(MODEL).status == "success"
            client.delete(MODEL)
            client.chat(**_chat(False))  # type: ignore[arg-type]
    assert [r.path for r in writer.requests] == ["/api/pull", "/api/delete"]
    assert [r.path for r in serving.requests] == ["/api/chat"]


def test_a_gguf_upload_sends_its_blob_to_the_writer() -> None:
    """Open WebUI's GGUF upload: the file to /api/blobs/DIGEST, then /api/create."""
    data = b"GGUF fake weights"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with running_fake_ollama() as serving, running_fake_ollama() as writer:
        settings = ProxySettings(upstream=serving.url, management_upstream=writer.url)
        with serve_in_thread(build_app(settings)) as url, httpx.Client(base_url=url) as http:
            assert http.post(f"/api/blobs/{digest}", content=data).status_code == 201
            assert http.head(f"/api/blobs/{digest}").status_code == 200
    assert [r.path for r in writer.requests] == [f"/api/blobs/{digest}"] * 2
    assert serving.requests == []


@pytest.mark.parametrize("rig", [{"proxy": {"ready_model": "llama3.2"}}], indirect=True)
def test_ready_only_once_the_model_is_loaded(rig: Rig) -> None:
    with httpx.Client() as http:
        not_yet = http.get(f"{rig.url}/readyz")
        assert not_yet.status_code == 503 and "not loaded" in not_yet.json()["error"]
        with ollama.Client(host=rig.url) as client:
            client.generate(model=MODEL, prompt="")  # loads it
        assert http.get(f"{rig.url}/readyz").status_code == 200
        assert http.get(f"{rig.url}/healthz").status_code == 200
