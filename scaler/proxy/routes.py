"""Which Ollama paths are which: inference (queued, a slot each), model management
(to the models volume's one writer), the other known ones, and the normal form of a
path every classification uses. Shared by ``scaler proxy`` and ``scaler router``;
also the bounded set of ``path`` label values."""

from __future__ import annotations

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


def path_label(path: str) -> str:
    return path if path in LABELLED_PATHS else "other"
