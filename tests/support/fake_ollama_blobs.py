"""Ollama's blob and create routes: ``HEAD|POST /api/blobs/DIGEST``, ``POST /api/create``.

Mirrors ``server/routes.go`` (``HeadBlobHandler``, ``CreateBlobHandler``) and
``server/create.go`` (``CreateHandler``) as of Ollama's main branch read in 2026
(ollama/ollama@00188139 routes.go, @0029bb5a create.go):

- A digest is ``sha256:HEX`` or ``sha256-HEX`` (64 hex digits, ``manifest``'s
  ``digestPattern``); anything else is 400 ``invalid digest format``.
- ``HEAD``: 200 if the blob is on the volume, else 404 ``blob "DIGEST" not found``.
- ``POST``: 200 at once if the blob is already there (its body unread); else the body
  is stored only if its sha256 is the digest, spelled ``sha256:HEX`` (201), or 400
  ``digest mismatch, expected "DIGEST", got "sha256:HEX"``.
- ``/api/create`` with ``files: {"NAME": "DIGEST"}`` (what Open WebUI 0.12.4 sends for a
  GGUF upload, ``stream: false``): every digest is checked first (400 ``invalid digest
  for NAME: invalid digest format``). A NAME ending in ``.gguf`` is known to be GGUF by
  its name, so its blob is opened only once the stream has begun: a missing one is a
  ``parsing GGUF`` line then ``{"error": "open PATH: no such file or directory"}`` in a
  200 stream, or HTTP 500 with that error when ``stream`` is false (``waitForStream``).
  Any other NAME is opened to sniff its type before anything is written: a missing
  blob is 400 ``blob not found for NAME (digest DIGEST): open PATH: ...``. Neither
  ``from`` nor ``files``: 400 ``neither 'from' or 'files' was specified``.
- What the fake does not check: that a blob holds a real GGUF file.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from aiohttp import web

from tests.support.fake_ollama_core import FAKE, ApiError, FakeOllama
from tests.support.fake_ollama_native import (
    LazyStream,
    dumps,
    json_body,
    model_named,
    wants_stream,
)
from tests.support.fake_ollama_shapes import digest_of

DIGEST = re.compile(r"^sha256[:-][0-9a-fA-F]{64}$")
BLOBS_DIR = "/root/.ollama/models/blobs"
"""Where the official image keeps blobs (``OLLAMA_MODELS`` unset, running as root);
it shows in Ollama's error messages."""

Line = dict[str, Any]


async def progress(
    request: web.Request, body: dict[str, Any], lines: list[Line], error: str | None = None
) -> web.StreamResponse:
    """Stream ``lines`` as NDJSON, then ``{"error": error}`` if the operation failed
    after it began (``streamResponse``); with ``stream: false``, the last line alone,
    or the error as HTTP 500 (``waitForStream``)."""
    if not wants_stream(body, default=True):
        if error is not None:
            return web.json_response({"error": error}, status=500)
        return web.json_response(lines[-1])
    stream = LazyStream(request)
    for line in [*lines, *([{"error": error}] if error is not None else [])]:
        await stream.send(f"{dumps(line)}\n".encode())
        await asyncio.sleep(0)
    return await stream.finish()


def _checked(digest: str) -> str:
    if not DIGEST.match(digest):
        raise ApiError(400, "invalid digest format")
    return digest


def _open_error(digest: str) -> str:
    """Go's ``*PathError`` text for a blob that is not on the volume."""
    return f"open {BLOBS_DIR}/{digest.replace(':', '-', 1)}: no such file or directory"


async def blob_exists(request: web.Request) -> web.Response:
    digest = _checked(request.match_info["digest"])
    if not request.app[FAKE].store.has_blob(digest):
        raise ApiError(404, f'blob "{digest}" not found')
    return web.Response(status=200)


async def blob_create(request: web.Request) -> web.Response:
    digest = _checked(request.match_info["digest"])
    store = request.app[FAKE].store
    if store.has_blob(digest):
        return web.Response(status=200)
    data = await request.read()
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if got != digest:  # sha256-HEX never matches: Ollama compares the strings
        raise ApiError(400, f'digest mismatch, expected "{digest}", got "{got}"')
    store.add_blob(digest, data)
    return web.Response(status=201)


def _files(body: dict[str, Any]) -> dict[str, str]:
    """``files`` checked as ``validateCreateFiles`` does, sorted by name."""
    files = body.get("files") or {}
    if not isinstance(files, dict):
        kind = {str: "string", list: "array", bool: "bool"}.get(type(files), "number")
        raise ApiError(
            400,
            f"json: cannot unmarshal {kind} into Go struct field CreateRequest.files"
            " of type map[string]string",
        )
    for name, digest in files.items():
        if not isinstance(digest, str) or not DIGEST.match(digest):
            raise ApiError(400, f"invalid digest for {name}: invalid digest format")
    return dict(sorted(files.items()))


def _gguf_layers(fake: FakeOllama, files: dict[str, str]) -> tuple[list[Line], str | None]:
    """Progress lines of the GGUF files, and the error that ends them if a blob is
    missing (``ggufLayersWithMediaType`` opens each blob after ``parsing GGUF``)."""
    lines: list[Line] = []
    for digest in files.values():
        lines.append({"status": "parsing GGUF"})
        if not fake.store.has_blob(digest):
            return lines, _open_error(digest)
    lines += [{"status": f"using existing layer {digest}"} for digest in files.values()]
    return lines, None


async def create(request: web.Request) -> web.StreamResponse:
    fake = request.app[FAKE]
    body = await json_body(request)
    model = model_named(body)
    files = _files(body)
    for name, digest in files.items():
        if not name.endswith(".gguf") and not fake.store.has_blob(digest):
            raise ApiError(
                400, f"blob not found for {name} (digest {digest}): {_open_error(digest)}"
            )
    source = body.get("from")
    if source:
        fake.require(source)
        lines: list[Line] = [
            {"status": "gathering model components"},
            {"status": f"using existing layer sha256:{digest_of(source)}"},
        ]
    elif files:
        lines, error = _gguf_layers(fake, files)
        if error is not None:
            return await progress(request, body, lines, error)
    else:
        raise ApiError(400, "neither 'from' or 'files' was specified")
    lines += [{"status": "writing manifest"}, {"status": "success"}]
    fake.install(model)
    return await progress(request, body, lines)


def add_routes(app: web.Application) -> None:
    app.router.add_route("HEAD", "/api/blobs/{digest}", blob_exists)
    app.router.add_post("/api/blobs/{digest}", blob_create)
    app.router.add_post("/api/create", create)
