"""Ollama's own inference routes: ``/api/generate``, ``/api/chat``, ``/api/embed(dings)``.

Wire format as in ``docs/api.md`` and ``server/routes.go``: ``stream`` defaults to true;
a stream is ``application/x-ndjson``, one compact JSON object per line, and NOTHING (not
even the status line) is written before the first token, because Ollama's handler only
writes once the runner produced output. The shared pieces (``LazyStream``, ``inference``)
are used by the OpenAI routes too.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.support.fake_ollama_core import FAKE, ApiError, FakeOllama
from tests.support.fake_ollama_run import Died
from tests.support.fake_ollama_shapes import answer_text, now_rfc3339

NDJSON = "application/x-ndjson"


def dumps(payload: Any) -> str:
    """Compact JSON, as Go's ``json.Marshal`` writes it."""
    return json.dumps(payload, separators=(",", ":"))


class LazyStream:
    """A streamed response that sends its status line and headers with the first chunk."""

    def __init__(
        self,
        request: web.Request,
        content_type: str = NDJSON,
        error_chunk: Callable[[str], bytes] = lambda e: f"{dumps({'error': e})}\n".encode(),
    ) -> None:
        self._request = request
        self.content_type = content_type
        self.error_chunk = error_chunk
        self.response: web.StreamResponse | None = None

    async def send(self, chunk: bytes) -> None:
        if self.response is None:
            self.response = web.StreamResponse(headers={"Content-Type": self.content_type})
            await self.response.prepare(self._request)
        await self.response.write(chunk)

    async def finish(self) -> web.StreamResponse:
        assert self.response is not None, "finish() before any chunk"
        await self.response.write_eof()
        return self.response


Handler = Callable[[web.Request, LazyStream], Awaitable[web.StreamResponse]]


def inference(
    content_type: str = NDJSON, error_chunk: Callable[[str], bytes] | None = None
) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Wrap an inference handler: give it a ``LazyStream``; turn a client disconnect
    into a quiet cancellation; carry out ``die_next``."""

    def decorate(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            stream = LazyStream(request, content_type)
            if error_chunk is not None:
                stream.error_chunk = error_chunk
            try:
                return await handler(request, stream)
            except Died as died:
                if died.how == "error":
                    if stream.response is None:
                        raise ApiError(500, died.message) from None
                    await stream.send(stream.error_chunk(died.message))
                    return await stream.finish()
                if request.transport is not None:
                    request.transport.close()  # flushes what was sent, then FIN
                raise asyncio.CancelledError from None
            except ConnectionError:
                # The client left between two writes; aiohttp would log a 500 for this.
                raise asyncio.CancelledError from None

        return wrapped

    return decorate


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        raise ApiError(400, "missing request body")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ApiError(400, f"invalid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def model_named(body: dict[str, Any]) -> str:
    """The model a management request names (``model``, or the older ``name``)."""
    model = body.get("model") or body.get("name")
    if not model:
        raise ApiError(400, "model is required")
    return str(model)


def wants_stream(body: dict[str, Any], default: bool) -> bool:
    stream = body.get("stream")
    return default if stream is None else bool(stream)


def token_budget(fake: FakeOllama, limit: Any) -> tuple[int, str]:
    """Tokens to generate and the ``done_reason``. The answer would be ``tokens`` long;
    a positive limit (``options.num_predict``; the OpenAI ``max_tokens`` and Anthropic
    ``max_tokens`` become it) at or under that cuts it with ``length``, as Ollama's
    runner ends a sequence once ``numPredicted >= numPredict``, before the model's own
    end. A larger limit, 0 or a negative one (-1: no limit) leave it whole: ``stop``."""
    natural = fake.settings.tokens
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit <= natural:
        return limit, "length"
    return natural, "stop"


def count_tokens(*texts: Any) -> int:
    """A stand-in tokenizer: words, at least one."""
    return max(1, sum(len(str(t).split()) for t in texts if t))


def embedding(text: str, size: int) -> list[float]:
    """A deterministic unit vector for ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(size)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


async def load_only(fake: FakeOllama, body: dict[str, Any]) -> tuple[str, str]:
    """An empty prompt loads the model (``done_reason: load``), or unloads it with
    ``keep_alive: 0``. No slot is taken."""
    name = fake.require(body.get("model"))
    if body.get("keep_alive") in (0, "0", "0s"):
        fake.unload(name)
        return name, "unload"
    await fake.ensure_loaded(name, body.get("keep_alive"))
    return name, "load"


@inference()
async def generate(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    fake = request.app[FAKE]
    body = await json_body(request)
    model = body.get("model")
    if not body.get("prompt") and not body.get("system") and not body.get("template"):
        _, reason = await load_only(fake, body)
        return web.json_response(_generate_chunk(model, "", done_reason=reason))
    count, reason = token_budget(fake, (body.get("options") or {}).get("num_predict"))
    prompt_tokens = count_tokens(body.get("system"), body.get("prompt"))
    streaming = wants_stream(body, default=True)
    async with fake.admit(model, body.get("keep_alive")) as run:
        async for token in fake.tokens(run, count):
            if streaming:
                await stream.send(f"{dumps(_generate_chunk(model, token))}\n".encode())
        final = _generate_chunk(model, "" if streaming else answer_text(count), done_reason=reason)
        if not body.get("raw"):
            final["context"] = list(range(1, prompt_tokens + count + 1))
        final.update(run.stats(prompt_tokens, count))
    if not streaming:
        return web.json_response(final)
    await stream.send(f"{dumps(final)}\n".encode())
    return await stream.finish()


def _generate_chunk(model: Any, text: str, done_reason: str | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {"model": model, "created_at": now_rfc3339(), "response": text}
    chunk["done"] = done_reason is not None
    if done_reason is not None:
        chunk["done_reason"] = done_reason
    return chunk


@inference()
async def chat(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    fake = request.app[FAKE]
    body = await json_body(request)
    model = body.get("model")
    messages = body.get("messages") or []
    if not messages:
        _, reason = await load_only(fake, body)
        return web.json_response(_chat_chunk(model, "", done_reason=reason))
    count, reason = token_budget(fake, (body.get("options") or {}).get("num_predict"))
    prompt_tokens = count_tokens(*(m.get("content") for m in messages if isinstance(m, dict)))
    streaming = wants_stream(body, default=True)
    async with fake.admit(model, body.get("keep_alive")) as run:
        async for token in fake.tokens(run, count):
            if streaming:
                await stream.send(f"{dumps(_chat_chunk(model, token))}\n".encode())
        final = _chat_chunk(model, "" if streaming else answer_text(count), done_reason=reason)
        final.update(run.stats(prompt_tokens, count))
    if not streaming:
        return web.json_response(final)
    await stream.send(f"{dumps(final)}\n".encode())
    return await stream.finish()


def _chat_chunk(model: Any, text: str, done_reason: str | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "model": model,
        "created_at": now_rfc3339(),
        "message": {"role": "assistant", "content": text},
        "done": done_reason is not None,
    }
    if done_reason is not None:
        chunk["done_reason"] = done_reason
    return chunk


@inference()
async def embed(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    """``{"model", "embeddings": [[...]], "total_duration", "load_duration",
    "prompt_eval_count"}``; the compute time is ``prefill``."""
    fake = request.app[FAKE]
    body = await json_body(request)
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    if not texts:
        await load_only(fake, body)
        return web.json_response({"model": body.get("model"), "embeddings": []})
    async with fake.admit(body.get("model"), body.get("keep_alive")) as run:
        size = fake.settings.embedding_size
        stats = run.stats(count_tokens(*texts), 0)
    return web.json_response(
        {
            "model": body.get("model"),
            "embeddings": [embedding(str(t), size) for t in texts],
            **{k: stats[k] for k in ("total_duration", "load_duration", "prompt_eval_count")},
        }
    )


@inference()
async def embeddings(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    """Legacy ``/api/embeddings``: ``{"prompt"}`` in, ``{"embedding": [...]}`` out."""
    fake = request.app[FAKE]
    body = await json_body(request)
    prompt = body.get("prompt")
    if not prompt:
        await load_only(fake, body)
        return web.json_response({"embedding": []})
    async with fake.admit(body.get("model"), body.get("keep_alive")):
        vector = embedding(str(prompt), fake.settings.embedding_size)
    return web.json_response({"embedding": vector})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/generate", generate)
    app.router.add_post("/api/chat", chat)
    app.router.add_post("/api/embed", embed)
    app.router.add_post("/api/embeddings", embeddings)
