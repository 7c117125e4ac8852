"""Ollama's CPU threads, set per pod: every native inference request says ``num_thread``.

Ollama sizes its threads from the host's cores, not the container's CPU limit
(ollama/ollama#17916, open; PR #17962 would fix it): with a 400m limit on an 8-core
node, 8 threads convoy against CFS throttling and generation slows ~45x. There is no
environment variable for it; the thread count is a runner option, taken from the
request's ``options`` over the model's own defaults, and Ollama reloads a model
whose runner options change (``needsReload`` in server/sched.go). So the proxy sets
the same ``options.num_thread`` on every native request it forwards (the warm-up and
the residency reload included, so the model is loaded with it): the thread count is
the pod's, not the client's, and never changes between requests.

What it cannot reach: OpenAI-compatible ``/v1/*`` requests have no ``options`` (Ollama's
middleware drops unknown fields); such a request runs with the model's default threads,
and the next native one loads the model again. (Every inference body is read whole
before its slot, ``body.py``, so size no longer matters.) Open WebUI's chats use the
native ``/api/chat``.
"""

from __future__ import annotations

import json

NATIVE_INFERENCE = frozenset({"/api/generate", "/api/chat", "/api/embed", "/api/embeddings"})


def pin_threads(path: str, body: bytes, threads: int) -> bytes:
    """``body`` with ``options.num_thread`` set to ``threads`` for a native inference
    path; any other body, or one that is not a JSON object with an object (or no)
    ``options``, unchanged (Ollama answers a malformed one itself)."""
    if path not in NATIVE_INFERENCE:
        return body
    try:
        request = json.loads(body)
    except ValueError:
        return body
    if not isinstance(request, dict):
        return body
    options = request.get("options")
    if options is None:
        options = request["options"] = {}
    if not isinstance(options, dict) or options.get("num_thread") == threads:
        return body
    options["num_thread"] = threads
    return json.dumps(request, separators=(",", ":")).encode()
