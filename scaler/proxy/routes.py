"""Which Ollama paths are which: inference (queued, a slot each), model management
(to the models volume's one writer), the other known ones, and the normal form of a
path every classification uses. Shared by ``scaler proxy`` and ``scaler router``;
also the bounded set of ``path`` label values.

The inference paths are every POST route that reaches a model in Ollama's
``GenerateRoutes`` (``server/routes.go`` at ollama/ollama@00188139, the main branch as
read for issue 17): its own API, the OpenAI-compatible one (chat, completions,
embeddings, responses, images, audio) and the Anthropic-compatible ``/v1/messages``.
An older Ollama without one of these routes answers it 404, once it has its slot.
A POST to a path in none of these sets whose body is a JSON object naming a string
``model`` is inference as well (``names_a_model``), counted as ``other``: a route a
newer Ollama adds is queued before this list knows it.
"""

from __future__ import annotations

import json
import re

INFERENCE_PATHS = frozenset(
    {
        "/api/generate",
        "/api/chat",
        "/api/embed",
        "/api/embeddings",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/images/generations",
        "/v1/images/edits",  # JSON for Ollama; multipart from OpenAI clients (passed as is)
        "/v1/audio/transcriptions",  # multipart/form-data
        "/v1/messages",  # Anthropic's Messages API
    }
)
MANAGEMENT_PATHS = frozenset({"/api/pull", "/api/create", "/api/copy", "/api/delete", "/api/push"})
OTHER_KNOWN_PATHS = frozenset(
    {"/", "/api/tags", "/api/ps", "/api/show", "/api/version", "/v1/models"}
)
LABELLED_PATHS = INFERENCE_PATHS | MANAGEMENT_PATHS | OTHER_KNOWN_PATHS
# A GGUF upload from Open WebUI posts the file to /api/blobs/DIGEST, then /api/create
# names that blob: both must reach the writer, the only Ollama that writes the models.
BLOBS_PREFIX = "/api/blobs/"


def normal_path(path: str) -> str:
    """``path`` with repeated slashes collapsed and no trailing slash: ``/api//pull``
    and ``/api/pull/`` are ``/api/pull`` (Ollama's router redirects or refuses the
    others, so the proxy and the router classify and forward the normal form)."""
    if "//" not in path and not (path.endswith("/") and len(path) > 1):
        return path  # nearly every request: no regex
    return re.sub("/{2,}", "/", path).rstrip("/") or "/"


def is_management(path: str) -> bool:
    """A write to the models volume: it goes to the writer, not to the pod's Ollama."""
    return path in MANAGEMENT_PATHS or path.startswith(BLOBS_PREFIX)


OTHER = "other"
"""The ``path`` label of every path not in ``LABELLED_PATHS``."""


def path_label(path: str) -> str:
    return path if path in LABELLED_PATHS else OTHER


def may_name_a_model(method: str, path: str) -> bool:
    """A request whose body must be read to classify it: a POST to a path in no known
    set (an unknown POST that names a model is inference)."""
    return method == "POST" and path not in LABELLED_PATHS and not is_management(path)


def names_a_model(body: bytes) -> bool:
    """``body`` is a JSON object with a string ``model``: Ollama's shape of a request
    for a model, on every inference route it has."""
    try:
        parsed = json.loads(body)
    except ValueError:  # not JSON (or not UTF-8): a form, an upload
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("model"), str)


def is_form(content_type: str) -> bool:
    """A ``multipart/form-data`` body (``/v1/audio/transcriptions``; image edits from
    OpenAI clients): not JSON, and passed on byte for byte."""
    return content_type.lower().startswith("multipart/form-data")
