"""Ollama's Anthropic-compatible route, ``POST /v1/messages`` (``anthropic/anthropic.go``,
``middleware/anthropic.go``, ollama/ollama main in 2026): the request becomes an
``/api/chat`` with ``options.num_predict = max_tokens``, so it takes a slot like a chat.

- Checked in this order, each a 400: ``model is required``, ``max_tokens is required
  and must be positive``, ``messages is required``. Errors are Anthropic's shape,
  ``{"type": "error", "error": {"type", "message"}, "request_id"}``, the type following
  the status (``anthropic.NewError``).
- ``stream`` defaults to false: one JSON message, ``{"id": "msg_…", "type": "message",
  "role": "assistant", "model", "content": [{"type": "text", "text"}], "stop_reason",
  "usage": {"input_tokens", "output_tokens"}}``.
- ``stream: true``: ``text/event-stream`` of ``event: NAME\\ndata: JSON\\n\\n``:
  ``message_start``, ``content_block_start`` (an empty text block), one
  ``content_block_delta`` (``text_delta``) per token, ``content_block_stop``,
  ``message_delta`` (``stop_reason``, usage), ``message_stop`` (``StreamConverter``).
  Nothing is written before the first token, as on every inference route.
- ``stop_reason``: ``end_turn``, or ``max_tokens`` when ``max_tokens`` cut the answer
  (``mapStopReason``: ``length`` → ``max_tokens``).
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from tests.support.fake_ollama_core import FAKE, ApiError
from tests.support.fake_ollama_native import (
    LazyStream,
    count_tokens,
    dumps,
    inference,
    json_body,
    token_budget,
)
from tests.support.fake_ollama_shapes import answer_text

SSE = "text/event-stream"
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_payload(status: int, message: str) -> dict[str, Any]:
    """``anthropic.NewError``: the error's type follows the status."""
    kind = _ERROR_TYPES.get(status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": f"req_{secrets.token_hex(12)}",
    }


def _event(name: str, **fields: Any) -> bytes:
    """One SSE event, its data ``{"type": name, **fields}`` (``writeSSE``)."""
    return f"event: {name}\ndata: {dumps({'type': name, **fields})}\n\n".encode()


def _stream_error(message: str) -> bytes:
    return _event("error", error={"type": "api_error", "message": message})


def _checked(body: dict[str, Any]) -> tuple[Any, int, list[Any]]:
    model, max_tokens, messages = body.get("model"), body.get("max_tokens"), body.get("messages")
    if not model:
        raise ApiError(400, "model is required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0:
        raise ApiError(400, "max_tokens is required and must be positive")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages is required")
    return model, max_tokens, messages


def _text_of(message: Any) -> str:
    """A message's text: a string, or its ``text`` blocks joined."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return str(content or "")


@inference(SSE, _stream_error)
async def messages(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    fake = request.app[FAKE]
    body = await json_body(request)
    model, max_tokens, turns = _checked(body)
    count, reason = token_budget(fake, max_tokens)
    input_tokens = count_tokens(body.get("system"), *(_text_of(m) for m in turns))
    message = {"id": f"msg_{secrets.token_hex(12)}", "type": "message", "role": "assistant"}
    message["model"] = model
    streaming = bool(body.get("stream"))
    async with fake.admit(model, None) as run:
        async for token in fake.tokens(run, count):
            if streaming and stream.response is None:
                start = message | {"content": [], "usage": _usage(input_tokens, 0)}
                await stream.send(_event("message_start", message=start))
                text_block = {"type": "text", "text": ""}
                await stream.send(_event("content_block_start", index=0, content_block=text_block))
            if streaming:
                delta = {"type": "text_delta", "text": token}
                await stream.send(_event("content_block_delta", index=0, delta=delta))
    usage, stop = _usage(input_tokens, count), STOP_REASONS[reason]
    if not streaming:
        text = [{"type": "text", "text": answer_text(count)}]
        return web.json_response(message | {"content": text, "stop_reason": stop, "usage": usage})
    await stream.send(_event("content_block_stop", index=0))
    await stream.send(_event("message_delta", delta={"stop_reason": stop}, usage=usage))
    await stream.send(_event("message_stop"))
    return await stream.finish()


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
