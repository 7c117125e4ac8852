"""What the router decides from a request alone, before any pod: whether an inference
body may take a place in the queue, and which pass-through paths the models' writer
may answer when no pod is ready."""

from __future__ import annotations

import json


class BadRequest(Exception):
    """An inference request the router refuses before queueing it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


MODEL_LIST = frozenset({"/api/tags", "/api/version", "/api/ps", "/api/show", "/v1/models"})
"""Read-only paths the writer answers as well as any pod (same models volume)."""


def lists_models(method: str, path: str) -> bool:
    if method == "POST":
        return path == "/api/show"
    return method in ("GET", "HEAD") and (path in MODEL_LIST or path.startswith("/v1/models/"))


def json_object(body: bytes) -> None:
    """Refuse a body that is not a JSON object before it takes a slot."""
    try:
        parsed = json.loads(body)
    except ValueError as error:
        raise BadRequest(400, f"request body is not valid JSON: {error}") from error
    if not isinstance(parsed, dict):
        raise BadRequest(400, f"request body must be a JSON object, not {type(parsed).__name__}")
