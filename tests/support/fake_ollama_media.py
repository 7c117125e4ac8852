"""Ollama's OpenAI-compatible image and audio routes (``middleware/openai.go``, ollama
main in 2026): each becomes a generate or chat request, so it takes a slot.

- ``POST /v1/images/generations`` and ``POST /v1/images/edits``: JSON bodies (Ollama
  binds both as JSON; ``edits`` carries its ``image`` base64 in the JSON, and a
  multipart body gets Ollama's JSON decoding error, 400). ``prompt is required``,
  ``model is required`` (and ``image is required`` for edits) are 400s. The answer is
  ``{"created", "data": [{"b64_json"}]}``.
- ``POST /v1/audio/transcriptions``: ``multipart/form-data`` with ``model`` and
  ``file``; ``model is required``, ``file is required: ...`` are 400s. The answer is
  ``{"text"}``, or the bare text with ``response_format=text``.

The fake does not check that the model can make images or hear audio (Ollama checks
its capabilities); errors take OpenAI's shape, as on the other ``/v1`` routes.
"""

from __future__ import annotations

import base64
import json
import time
from email import policy
from email.parser import BytesParser
from typing import Any

from aiohttp import web

from tests.support.fake_ollama_core import FAKE, ApiError
from tests.support.fake_ollama_native import LazyStream, inference
from tests.support.fake_ollama_shapes import answer_text

IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()
"""The ``b64_json`` of every image the fake makes."""


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The body as gin's ``ShouldBindJSON`` reads it: a JSON object, or a 400."""
    try:
        body = json.loads(await request.read())
    except ValueError as error:
        raise ApiError(400, f"invalid character in JSON body: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "json: cannot unmarshal into Go value of type object")
    return body


async def _image(request: web.Request, required: tuple[str, ...]) -> web.Response:
    fake = request.app[FAKE]
    body = await _json_body(request)
    for key in required:
        if not body.get(key):
            raise ApiError(400, f"{key} is required")
    async with fake.admit(body["model"], None):
        pass  # the whole image comes at once, after the slot's prefill
    count = int(body.get("n") or 1)
    data = [{"b64_json": IMAGE} for _ in range(count)]
    return web.json_response({"created": int(time.time()), "data": data})


@inference()
async def images_generations(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    return await _image(request, ("prompt", "model"))


@inference()
async def images_edits(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    return await _image(request, ("prompt", "model", "image"))


def _form(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """A ``multipart/form-data`` body's fields: name → (file name or ``None``, bytes).
    Parsed from the bytes already read (the fake's log read the stream)."""
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            400, "failed to parse multipart form: request Content-Type isn't multipart/form-data"
        )
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


@inference()
async def transcriptions(request: web.Request, stream: LazyStream) -> web.StreamResponse:
    fake = request.app[FAKE]
    form = _form(request.headers.get("Content-Type", ""), await request.read())
    model = form.get("model", (None, b""))[1].decode()
    if not model:
        raise ApiError(400, "model is required")
    if "file" not in form:
        raise ApiError(400, "file is required: http: no such file")
    async with fake.admit(model, None) as run:
        async for _ in fake.tokens(run, fake.settings.tokens):
            pass  # the text comes whole, once the last token is out
    text = answer_text(fake.settings.tokens)
    if form.get("response_format", (None, b""))[1] == b"text":
        return web.Response(text=text, content_type="text/plain")
    return web.json_response({"text": text})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/images/generations", images_generations)
    app.router.add_post("/v1/images/edits", images_edits)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
