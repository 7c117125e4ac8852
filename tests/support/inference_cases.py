"""Requests of every inference family Ollama serves, each with the ``path`` label the
proxy and the router count it under and the status the fake Ollama answers it with;
shared by ``tests/test_proxy_inference_paths.py`` and
``tests/test_router_inference_paths.py`` (issue 17, fix 2)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

MODEL = "llama3.2"
HELLO = [{"role": "user", "content": "hi"}]
SLOW = {"tokens": 1000, "tokens_per_second": 100.0}
"""A blocker's answer lasts 10 s; it is cut short once the request under test waits."""
BOUNDARY = "scaler-test-boundary"
FORM = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(*fields: tuple[str, str | None, bytes]) -> bytes:
    """A ``multipart/form-data`` body: (name, file name or None, bytes) per field."""
    out = b""
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


AUDIO = multipart(("model", None, MODEL.encode()), ("file", "a.wav", b"RIFF\x00\xff\xfe audio"))
EDIT_FORM = multipart(("model", None, MODEL.encode()), ("image", "a.png", b"\x89PNG\x00\xff"))


@dataclass(frozen=True)
class Case:
    path: str
    body: bytes
    content_type: str
    label: str
    status: int


def _json(path: str, body: dict[str, object], label: str | None = None) -> Case:
    return Case(path, json.dumps(body).encode(), "application/json", label or path, 200)


CASES = [
    pytest.param(
        _json("/v1/messages", {"model": MODEL, "max_tokens": 2, "messages": HELLO}),
        id="anthropic-messages",
    ),
    pytest.param(_json("/v1/images/generations", {"model": MODEL, "prompt": "a cat"}), id="images"),
    pytest.param(
        _json("/v1/images/edits", {"model": MODEL, "prompt": "a hat", "image": "aGk="}),
        id="image-edits",
    ),
    # Ollama binds an edit as JSON and refuses a multipart one itself (400): admitted all
    # the same, and its bytes reach Ollama unchanged.
    pytest.param(
        Case("/v1/images/edits", EDIT_FORM, FORM, "/v1/images/edits", 400),
        id="image-edits-multipart",
    ),
    pytest.param(
        Case("/v1/audio/transcriptions", AUDIO, FORM, "/v1/audio/transcriptions", 200),
        id="audio-transcriptions",
    ),
    # Not a path Ollama serves today (the fake answers 404), but it names a model.
    pytest.param(
        Case(
            "/api/future", json.dumps({"model": MODEL}).encode(), "application/json", "other", 404
        ),
        id="unknown-post-naming-a-model",
    ),
]
