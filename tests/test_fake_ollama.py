"""The fake Ollama against the official ``ollama`` client and raw HTTP.

If the official client is happy with the fake, the proxy tests built on it are testing
against Ollama's real wire format. Timing checks use small real delays (0.1-0.3 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator

import aiohttp
import httpx
import ollama
import pytest
from aiohttp import web

from tests.support.fake_ollama import (
    BUSY_ERROR,
    RunningFakeOllama,
    answer_text,
    answer_tokens,
    running_fake_ollama,
)
from tests.support.threaded_server import serve_in_thread

MODEL = "llama3.2"
HELLO = [{"role": "user", "content": "why is the sky blue?"}]
SLOW = {"tokens": 1000, "tokens_per_second": 100}
"""An answer that lasts 10 s: long enough to act while it streams; tests cut it short."""


@pytest.fixture
def fake() -> Iterator[RunningFakeOllama]:
    with running_fake_ollama() as server:
        yield server


@pytest.fixture
def client(fake: RunningFakeOllama) -> Iterator[ollama.Client]:
    with ollama.Client(host=fake.url) as c:
        yield c


# -- the official client, native API ------------------------------------------------------


def test_chat_without_streaming_returns_the_whole_answer_and_stats(client: ollama.Client) -> None:
    reply = client.chat(model=MODEL, messages=HELLO)

    assert reply.message.role == "assistant"
    assert reply.message.content == answer_text(20)
    assert reply.done and reply.done_reason == "stop"
    assert reply.eval_count == 20 and reply.prompt_eval_count == 5
    assert reply.total_duration and reply.total_duration >= (reply.eval_duration or 0) > 0


def test_chat_streams_one_chunk_per_token_then_a_final_chunk(client: ollama.Client) -> None:
    parts = list(client.chat(model=MODEL, messages=HELLO, stream=True))

    assert [p.message.content for p in parts[:-1]] == answer_tokens(20)
    assert not any(p.done for p in parts[:-1])
    final = parts[-1]
    assert final.done and final.done_reason == "stop" and final.message.content == ""
    assert final.eval_count == 20 and final.load_duration and final.prompt_eval_duration


def test_num_predict_sets_the_length_and_ends_with_length(client: ollama.Client) -> None:
    parts = list(client.chat(model=MODEL, messages=HELLO, stream=True, options={"num_predict": 3}))

    assert "".join(p.message.content or "" for p in parts) == answer_text(3)
    assert parts[-1].done_reason == "length" and parts[-1].eval_count == 3


def test_generate_streams_and_returns_context(client: ollama.Client) -> None:
    parts = list(client.generate(model=MODEL, prompt="why is the sky blue?", stream=True))
    whole = client.generate(model=MODEL, prompt="why is the sky blue?")

    assert "".join(p.response or "" for p in parts) == whole.response == answer_text(20)
    assert parts[-1].done and parts[-1].context and whole.context
    assert whole.done_reason == "stop"


def test_empty_prompt_loads_and_keep_alive_zero_unloads(
    fake: RunningFakeOllama, client: ollama.Client
) -> None:
    assert client.ps().models == []

    assert client.generate(model=MODEL).done_reason == "load"
    assert [m.model for m in client.ps().models] == ["llama3.2:latest"]

    assert client.generate(model=MODEL, keep_alive=0).done_reason == "unload"
    assert client.ps().models == []
    assert fake.served == 0  # neither took a slot


async def test_async_client_streams(fake: RunningFakeOllama) -> None:
    async with ollama.AsyncClient(host=fake.url) as client:
        stream = await client.chat(model=MODEL, messages=HELLO, stream=True)
        contents = [part.message.content async for part in stream]

    assert "".join(c or "" for c in contents) == answer_text(20)


def test_embed_and_legacy_embeddings(client: ollama.Client) -> None:
    many = client.embed(model="all-minilm", input=["a", "b"])
    one = client.embed(model="all-minilm", input="a")
    legacy = client.embeddings(model="all-minilm", prompt="a")

    assert len(many.embeddings) == 2 and len(many.embeddings[0]) == 8
    assert many.embeddings[0] == one.embeddings[0] == legacy.embedding
    assert many.embeddings[0] != many.embeddings[1]
    assert many.prompt_eval_count == 2 and many.total_duration


def test_list_show_and_ps(client: ollama.Client) -> None:
    listed = client.list()
    assert [m.model for m in listed.models] == ["llama3.2:latest", "all-minilm:latest"]
    assert listed.models[0].details and listed.models[0].details.family == "llama"

    shown = client.show(MODEL)
    assert shown.capabilities == ["completion", "tools"] and shown.modelinfo

    client.chat(model=MODEL, messages=HELLO)
    running = client.ps().models
    assert [m.model for m in running] == ["llama3.2:latest"]
    assert running[0].expires_at and running[0].size_vram


def test_pull_streams_progress_and_installs_the_model(client: ollama.Client) -> None:
    progress = list(client.pull("qwen3:0.6b", stream=True))

    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layer = [p for p in progress if p.digest]
    assert layer[0].status == f"pulling {layer[0].digest[7:19]}"  # type: ignore[index]
    assert [p.completed for p in layer[:4]] == [0, 673131063, 1346262126, 2019393189]
    assert client.pull("qwen3:0.6b").status == "success"
    assert "qwen3:0.6b" in [m.model for m in client.list().models]


def test_create_copy_delete_and_push(client: ollama.Client) -> None:
    assert client.create(model="mario", from_=MODEL).status == "success"
    assert client.copy("mario", "luigi").status == "success"
    assert client.delete("mario").status == "success"
    assert [p.status for p in client.push("luigi", stream=True)][-1] == "success"

    with pytest.raises(ollama.ResponseError) as missing:
        client.delete("mario")
    assert missing.value.status_code == 404


def test_unknown_model_is_404_and_missing_model_is_400(
    fake: RunningFakeOllama, client: ollama.Client
) -> None:
    with pytest.raises(ollama.ResponseError) as unknown:
        client.chat(model="nope", messages=HELLO)
    assert unknown.value.status_code == 404
    assert unknown.value.error == "model 'nope' not found"

    # The client refuses an empty model itself, so ask over raw HTTP.
    reply = httpx.post(f"{fake.url}/api/chat", json={"messages": HELLO})
    assert (reply.status_code, reply.json()) == (400, {"error": "model is required"})


def test_probes_answer_like_ollama(fake: RunningFakeOllama) -> None:
    # ollama 0.6 has no Client.version(), so the probes are checked over raw HTTP.
    with httpx.Client(base_url=fake.url) as http:
        root = http.get("/")
        assert (root.status_code, root.text) == (200, "Ollama is running")
        assert http.head("/").status_code == 200
        assert http.get("/api/version").json() == {"version": "0.11.4"}
        assert http.head("/api/tags").status_code == 200


def test_requests_are_logged_with_method_path_and_body(
    fake: RunningFakeOllama, client: ollama.Client
) -> None:
    client.list()
    client.chat(model=MODEL, messages=HELLO)

    logged = fake.requests
    assert [(r.method, r.path) for r in logged] == [("GET", "/api/tags"), ("POST", "/api/chat")]
    assert logged[1].body["messages"] == HELLO and logged[1].body["stream"] is False


# -- wire format: nothing before the first token, SSE --------------------------------------


async def test_no_byte_is_written_before_the_first_token(fake: RunningFakeOllama) -> None:
    fake.set_prefill(0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    body = json.dumps({"model": MODEL, "prompt": "hi"}).encode()
    head = f"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    sent = time.monotonic()
    writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.2)  # silence while prefilling
        first = await asyncio.wait_for(reader.read(1), 5)
        waited = time.monotonic() - sent
        rest = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()

    assert waited >= 0.3
    response = (first + rest).decode()
    assert response.startswith("HTTP/1.1 200 OK\r\n")
    assert "Content-Type: application/x-ndjson\r\n" in response
    assert "Transfer-Encoding: chunked\r\n" in response


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/api/chat", {"model": MODEL, "messages": HELLO}, id="native"),
        pytest.param(
            "/v1/chat/completions", {"model": MODEL, "messages": HELLO, "stream": True}, id="sse"
        ),
    ],
)
async def test_headers_wait_for_load_slot_and_prefill(
    fake: RunningFakeOllama, path: str, body: dict[str, object]
) -> None:
    fake.configure(load_delay=0.15, prefill=0.15)
    async with aiohttp.ClientSession() as session:
        sent = time.monotonic()
        async with session.post(f"{fake.url}{path}", json=body) as reply:
            waited = time.monotonic() - sent
            await reply.read()

    assert waited >= 0.3


async def test_openai_chat_stream_is_server_sent_events_ending_with_done(
    fake: RunningFakeOllama,
) -> None:
    body = {
        "model": MODEL,
        "messages": HELLO,
        "stream": True,
        "max_tokens": 3,
        "stream_options": {"include_usage": True},
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.url}/v1/chat/completions", json=body) as reply,
    ):
        assert reply.headers["Content-Type"] == "text/event-stream"
        text = await reply.text()

    events = text.split("\n\n")
    assert events[-1] == "" and all(e.startswith("data: ") for e in events[:-1])
    datas = [e.removeprefix("data: ") for e in events[:-1]]
    assert datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    deltas = [c["choices"][0] for c in chunks[:-1]]
    assert [d["delta"]["content"] for d in deltas] == [*answer_tokens(3), ""]
    assert [d["finish_reason"] for d in deltas] == [None, None, None, "length"]
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 3


def test_openai_non_streaming_routes(fake: RunningFakeOllama) -> None:
    with httpx.Client(base_url=fake.url) as http:
        chat = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO}).json()
        text = http.post("/v1/completions", json={"model": MODEL, "prompt": "hi"}).json()
        vectors = http.post("/v1/embeddings", json={"model": "all-minilm", "input": ["a", "b"]})
        models = http.get("/v1/models").json()
        missing = http.post("/v1/chat/completions", json={"model": "nope", "messages": HELLO})

    assert chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"] == {"role": "assistant", "content": answer_text(20)}
    assert chat["usage"] == {"prompt_tokens": 5, "completion_tokens": 20, "total_tokens": 25}
    assert text["object"] == "text_completion" and text["choices"][0]["text"] == answer_text(20)
    assert [d["index"] for d in vectors.json()["data"]] == [0, 1]
    assert models["object"] == "list" and models["data"][0]["owned_by"] == "library"
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"


def test_openai_completions_stream(fake: RunningFakeOllama) -> None:
    body = {"model": MODEL, "prompt": "hi", "stream": True, "max_tokens": 2}
    with httpx.stream("POST", f"{fake.url}/v1/completions", json=body) as reply:
        lines = [line for line in reply.iter_lines() if line]

    assert lines[-1] == "data: [DONE]"
    texts = [json.loads(line[6:])["choices"][0]["text"] for line in lines[:-1]]
    assert texts == [*answer_tokens(2), ""]


# -- slots ----------------------------------------------------------------------------------


@pytest.mark.parametrize("slots", [1, 2])
async def test_slots_bound_the_requests_running_at_once(
    fake: RunningFakeOllama, slots: int
) -> None:
    fake.configure(slots=slots, tokens_per_second=100)  # 20 tokens: 0.2 s each
    async with ollama.AsyncClient(host=fake.url) as client:
        replies = [asyncio.create_task(client.chat(model=MODEL, messages=HELLO)) for _ in range(3)]
        await fake.wait_until_async(lambda s: (s.active, s.waiting) == (slots, 3 - slots))
        await asyncio.gather(*replies)

    stats = fake.stats()
    assert (stats.max_active_seen, stats.served, stats.active, stats.waiting) == (slots, 3, 0, 0)


async def test_raising_slots_admits_the_waiting_requests(fake: RunningFakeOllama) -> None:
    fake.configure(**SLOW)
    async with aiohttp.ClientSession() as session:
        posts = [
            asyncio.create_task(session.post(f"{fake.url}/api/chat", json=_chat()))
            for _ in range(3)
        ]
        await fake.wait_until_async(lambda s: s.active == 1 and s.waiting == 2)

        fake.set_slots(3)

        await fake.wait_until_async(lambda s: s.active == 3 and s.waiting == 0)
        for reply in await asyncio.gather(*posts):
            reply.close()
    await fake.wait_until_async(lambda s: s.cancelled == 3 and s.active == 0)


# -- clients that go away ------------------------------------------------------------------


async def test_a_client_leaving_while_waiting_frees_its_place(fake: RunningFakeOllama) -> None:
    fake.configure(**SLOW)
    async with aiohttp.ClientSession() as session:
        holder = await session.post(f"{fake.url}/api/chat", json=_chat())  # headers = running
        waiter = asyncio.create_task(session.post(f"{fake.url}/api/chat", json=_chat()))
        await fake.wait_until_async(lambda s: s.waiting == 1)

        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter

        stats = await fake.wait_until_async(lambda s: s.cancelled == 1)
        assert (stats.waiting, stats.active) == (0, 1)
        holder.close()
    await fake.wait_until_async(lambda s: s.cancelled == 2 and s.active == 0)


async def test_a_client_leaving_mid_stream_frees_the_slot(fake: RunningFakeOllama) -> None:
    fake.configure(**SLOW)
    async with aiohttp.ClientSession() as session:
        reply = await session.post(f"{fake.url}/api/chat", json=_chat())
        first = json.loads(await reply.content.readline())
        assert first["message"]["content"] == "The" and fake.active == 1

        reply.close()

        stats = await fake.wait_until_async(lambda s: s.cancelled == 1)
    assert (stats.active, stats.served) == (0, 0)


def test_the_official_client_stopping_early_frees_the_slot(
    fake: RunningFakeOllama, client: ollama.Client
) -> None:
    fake.configure(**SLOW)
    parts = client.chat(model=MODEL, messages=HELLO, stream=True)
    assert next(parts).message.content == "The"

    parts.close()  # type: ignore[attr-defined]

    assert fake.wait_until(lambda s: s.cancelled == 1).active == 0


# -- injected failures ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_injected_status_surfaces_as_response_error(
    fake: RunningFakeOllama, client: ollama.Client, stream: bool
) -> None:
    fake.fail_next(2)

    for _ in range(2):
        with pytest.raises(ollama.ResponseError) as busy:
            _chat_to_the_end(client, stream)
        assert (busy.value.status_code, busy.value.error) == (503, BUSY_ERROR)

    assert client.chat(model=MODEL, messages=HELLO).done
    assert (fake.rejected, fake.served, fake.max_active_seen) == (2, 1, 1)


def test_injected_status_uses_the_openai_error_shape_under_v1(fake: RunningFakeOllama) -> None:
    fake.fail_next(1, status=500, error="boom")

    reply = httpx.post(f"{fake.url}/v1/chat/completions", json={"model": MODEL, "messages": HELLO})

    assert reply.status_code == 500
    assert reply.json() == {
        "error": {"message": "boom", "type": "api_error", "param": None, "code": None}
    }


def test_death_mid_stream_is_a_remote_protocol_error_and_frees_the_slot(
    fake: RunningFakeOllama, client: ollama.Client
) -> None:
    fake.die_next(after_tokens=3)
    received = []

    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        for part in client.chat(model=MODEL, messages=HELLO, stream=True):
            received.append(part.message.content)

    assert received == answer_tokens(3)
    stats = fake.wait_until(lambda s: s.died == 1 and s.active == 0)
    assert (stats.served, stats.cancelled) == (0, 0)
    assert client.chat(model=MODEL, messages=HELLO).done  # the next one is fine


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_death_before_any_token_is_a_disconnect_without_response(
    fake: RunningFakeOllama, client: ollama.Client, stream: bool
) -> None:
    fake.die_next(after_tokens=0)

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        _chat_to_the_end(client, stream)

    assert fake.wait_until(lambda s: s.died == 1).active == 0


async def test_death_mid_stream_with_the_async_client(fake: RunningFakeOllama) -> None:
    fake.die_next(after_tokens=2)
    async with ollama.AsyncClient(host=fake.url) as client:
        stream = await client.chat(model=MODEL, messages=HELLO, stream=True)
        with pytest.raises(httpx.RemoteProtocolError):
            async for _ in stream:
                pass


def test_error_line_mid_stream_is_a_response_error_without_status(
    fake: RunningFakeOllama, client: ollama.Client
) -> None:
    fake.die_next(after_tokens=2, how="error", error="runner crashed")

    with pytest.raises(ollama.ResponseError) as failed:
        list(client.chat(model=MODEL, messages=HELLO, stream=True))

    assert (failed.value.error, failed.value.status_code) == ("runner crashed", -1)
    assert fake.wait_until(lambda s: s.died == 1).active == 0


# -- upstream down --------------------------------------------------------------------------


def test_stop_refuses_connections_and_start_returns_cold_on_the_same_port(
    fake: RunningFakeOllama, client: ollama.Client
) -> None:
    fake.set_load_delay(0.1)
    assert (client.chat(model=MODEL, messages=HELLO).load_duration or 0) >= 0.1e9
    assert (client.chat(model=MODEL, messages=HELLO).load_duration or 0) < 0.1e9
    port = fake.port

    fake.stop()

    with pytest.raises(ConnectionError):
        client.list()
    with pytest.raises(httpx.ConnectError):  # the streaming path does not wrap it
        list(client.chat(model=MODEL, messages=HELLO, stream=True))

    fake.start()

    assert fake.port == port
    assert (client.chat(model=MODEL, messages=HELLO).load_duration or 0) >= 0.1e9


def test_stop_cuts_a_running_stream(fake: RunningFakeOllama, client: ollama.Client) -> None:
    fake.configure(**SLOW)
    parts = client.chat(model=MODEL, messages=HELLO, stream=True)
    next(parts)

    fake.stop()

    with pytest.raises(httpx.RemoteProtocolError):
        list(parts)
    assert fake.wait_until(lambda s: s.cancelled == 1).active == 0


# -- the generic threaded server --------------------------------------------------------------


def test_serve_in_thread_serves_any_app() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)

    with serve_in_thread(app) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url).text == "hi"

    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def _chat() -> dict[str, object]:
    return {"model": MODEL, "messages": HELLO}


def _chat_to_the_end(client: ollama.Client, stream: bool) -> None:
    if stream:
        list(client.chat(model=MODEL, messages=HELLO, stream=True))
    else:
        client.chat(model=MODEL, messages=HELLO)
