"""Ollama's OpenAI-compatible inference routes (``openai/openai.go``,
``middleware/openai.go``): ``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``. ``stream`` defaults to false here. A stream is ``text/event-stream``:
``data: {chunk}\\n\\n`` per token, the ``finish_reason`` chunk, an optional usage chunk
(``stream_options.include_usage``), then ``data: [DONE]\\n\\n``. As on the native
routes, nothing is written before the first token. Errors are
``{"error": {"message", "type", "param", "code"}}``.

``max_tokens`` bounds the answer (``openai.go`` makes it ``num_predict``; the last
choice says ``finish_reason: length`` when it cut the answer). ``max_completion_tokens``
is ignored, as Ollama ignores it: its ``ChatCompletionRequest`` has no such field
(ollama/ollama#7125; the PR adding it, #14464, is open).
"""

from __future__ import annotations

import random
import time
from typing import Any

from aiohttp import web

from tests.support.fake_ollama_core import FAKE, ApiError
from tests.support.fake_ollama_native import (
    LazyStream,
    count_tokens,
    dumps,
    embedding,
    inference,
    json_body,
    token_budget,
    wants_stream,
)
from tests.support.fake_ollama_shapes import answer_text

SSE = "text/event-stream"
DONE = b"data: [DONE]\n\n"


def error_payload(status: int, message: str) -> dict[str, Any]:
    """``openai.NewError``: the type follows the status."""
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {dumps(payload)}\n\n".encode()


def _sse_error(message: str) -> bytes:
    return _sse(error_payload(500, message))


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _envelope(kind: str, prefix: str, model: Any) -> dict[str, Any]:
    return {
        "id": f"{prefix}-{random.randrange(999)}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_ollama",
    }


def _require_model(body: dict[str, Any]) -> Any:
    if not body.get("model"):
        raise ApiError(400, "model is required")
    return body["model"]


@inference(SSE, _sse_error)
async def chat_completions(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    fake = request.app[FAKE]
    body = await json_body(request)
    model = _require_model(body)
    messages = body.get("messages") or []
    if not messages:
        raise ApiError(400, "[] is too short - 'messages'")
    count, reason = token_budget(fake, body.get("max_tokens"))
    prompt_tokens = count_tokens(*(m.get("content") for m in messages if isinstance(m, dict)))
    streaming = wants_stream(body, default=False)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunk = _envelope("chat.completion.chunk", "chatcmpl", model)

    def delta(text: str, finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": {"role": "assistant", "content": text}}
        return chunk | {"choices": [choice | {"finish_reason": finish}]}

    async with fake.admit(model, body.get("keep_alive")) as run:
        async for token in fake.tokens(run, count):
            if streaming:
                await stream.send(_sse(delta(token, None)))
    if not streaming:
        message = {"role": "assistant", "content": answer_text(count)}
        choice = {"index": 0, "message": message, "finish_reason": reason}
        completion = _envelope("chat.completion", "chatcmpl", model)
        return web.json_response(
            completion | {"choices": [choice], "usage": _usage(prompt_tokens, count)}
        )
    await stream.send(_sse(delta("", reason)))
    if include_usage:
        await stream.send(_sse(chunk | {"choices": [], "usage": _usage(prompt_tokens, count)}))
    await stream.send(DONE)
    return await stream.finish()


@inference(SSE, _sse_error)
async def completions(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    fake = request.app[FAKE]
    body = await json_body(request)
    model = _require_model(body)
    count, reason = token_budget(fake, body.get("max_tokens"))
    prompt_tokens = count_tokens(body.get("prompt"))
    streaming = wants_stream(body, default=False)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunk = _envelope("text_completion", "cmpl", model)

    def piece(text: str, finish: str | None) -> dict[str, Any]:
        return chunk | {"choices": [{"text": text, "index": 0, "finish_reason": finish}]}

    async with fake.admit(model, body.get("keep_alive")) as run:
        async for token in fake.tokens(run, count):
            if streaming:
                await stream.send(_sse(piece(token, None)))
    if not streaming:
        return web.json_response(
            piece(answer_text(count), reason) | {"usage": _usage(prompt_tokens, count)}
        )
    await stream.send(_sse(piece("", reason)))
    if include_usage:
        await stream.send(_sse(chunk | {"choices": [], "usage": _usage(prompt_tokens, count)}))
    await stream.send(DONE)
    return await stream.finish()


@inference(SSE, _sse_error)
async def openai_embeddings(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    fake = request.app[FAKE]
    body = await json_body(request)
    model = _require_model(body)
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts:
        raise ApiError(400, "invalid input")
    async with fake.admit(model, body.get("keep_alive")):
        size = fake.settings.embedding_size
    data = [
        {"object": "embedding", "embedding": embedding(str(t), size), "index": i}
        for i, t in enumerate(texts)
    ]
    tokens = count_tokens(*texts)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", openai_embeddings)
