"""Our errors for Kubernetes API calls, and the translation of the library's.

Callers of ``scaler.kube`` only ever see ``KubeError`` and its subclasses, with the
library's error chained as ``__cause__``.
"""

from __future__ import annotations

import json

from kubernetes_asyncio.client.exceptions import ApiException

from scaler.errors import ScalerError


class KubeError(ScalerError):
    """A Kubernetes API call failed; ``status`` is the HTTP status if there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    """The Deployment (or its scale subresource) does not exist."""


class Forbidden(KubeError):
    """RBAC denies the call (403)."""


class Conflict(KubeError):
    """The object changed under us (409) and retries on fresh state ran out."""


def api_error(what: str, err: ApiException) -> KubeError:
    """Our error for an HTTP error answer, with the message of its ``Status`` body."""
    status = err.status if isinstance(err.status, int) else None
    message = f"{what}: {status_message(err)} ({status})"
    if status == 403:
        return Forbidden(message, status=status)
    if status == 404:
        return NotFound(message, status=status)
    return KubeError(message, status=status)


def status_message(err: ApiException) -> str:
    """The ``message`` of the apiserver's ``Status`` body, else the HTTP reason."""
    body = err.body
    try:
        decoded = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        return str(decoded["message"])
    return str(err.reason or "no reason given")
