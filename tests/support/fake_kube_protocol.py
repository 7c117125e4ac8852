"""The apiserver's HTTP conventions, for the fake in ``tests/support/fake_kube.py``:
errors as ``Status`` objects, request bodies (JSON, merge patches), namespaces that
must match the URL's, and resourceVersion preconditions.

Shared by every endpoint module (``fake_kube_workloads``, ``fake_kube_leases``,
``fake_kube_events``), so each answers a malformed request the way the real one does.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_MERGE_PATCH = ("application/merge-patch+json", "application/strategic-merge-patch+json")
NAMESPACED = "/namespaces/{ns}"


class ApiError(Exception):
    """Raised by a handler; answered as a ``Status`` object with this code."""

    def __init__(
        self, code: int, message: str, *, reason: str | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details
        self.reason = reason or _REASONS.get(code, "Unknown")

    def response(self) -> web.Response:
        return web.json_response(self.status(), status=self.code)

    def status(self) -> dict[str, Any]:
        """The ``Status`` object, as in an error answer or a watch's ERROR event."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def not_found(resource: str, name: str) -> ApiError:
    kind, _, group = resource.partition(".")
    return ApiError(
        404,
        f'{resource} "{name}" not found',
        details={"name": name, "group": group, "kind": kind},
    )


def conflict(resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details={"name": name, "kind": resource.split(".")[0]},
    )


def invalid(kind: str, path: str, problem: str) -> ApiError:
    return ApiError(422, f"{kind} is invalid: {path}: {problem}")


def already_exists(resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{resource} "{name}" already exists',
        reason="AlreadyExists",
        details={"name": name, "kind": resource.split(".")[0]},
    )


def find(
    objects: Mapping[tuple[str, str, str], dict[str, Any]],
    resource: str,
    request: web.Request,
    what: str,
) -> dict[str, Any]:
    """The stored object the URL names (its ``ns`` and ``name``), or 404 naming ``what``."""
    ns, name = request.match_info["ns"], request.match_info["name"]
    obj = objects.get((resource, ns, name))
    if obj is None:
        raise not_found(what, name)
    return obj


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge is the same for the fields we patch)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def version_of(obj: dict[str, Any]) -> str:
    version: str = obj["metadata"]["resourceVersion"]
    return version


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError as err:
        raise ApiError(400, f"invalid JSON: {err}") from err
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be an object")
    body.setdefault("metadata", {})
    return body


async def patch_body(request: web.Request) -> dict[str, Any]:
    if request.content_type not in _MERGE_PATCH:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format ({request.content_type}) - "
            "accepted media types include: " + ", ".join(_MERGE_PATCH),
        )
    return await json_body(request)


def check_namespace(obj: dict[str, Any], namespace: str) -> None:
    meta = obj["metadata"]
    if meta.setdefault("namespace", namespace) != namespace:
        raise ApiError(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        )
