"""One Kubernetes API call with a deadline, its failures translated into our errors.

kubernetes-asyncio raises ``ApiException`` for HTTP errors, aiohttp's errors for
connection trouble, and ``ValueError`` when a response fails its model validation;
callers of ``scaler.kube`` only ever see ``KubeError`` and its subclasses, with the
library's error chained as ``__cause__``.

Every call scaler makes is ``send`` + ``call_json``: the request through the
``ApiClient``'s configuration, auth and session, the JSON answer decoded by the caller.
kubernetes-asyncio's generated API and model classes are never used: they cost CPU on
every answer and, imported, 36 MiB of memory (``scaler.kube.lean_client``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from scaler.kube.errors import KubeError, api_error

T = TypeVar("T")

STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
"""The Content-Type of our PATCHes: what kubernetes-asyncio's generated API sends for a
dict body (for the maps scaler patches, the same as a JSON merge patch)."""


def send(
    api: ApiClient,
    method: str,
    path: str,
    *,
    path_params: Mapping[str, str] | None = None,
    query: Sequence[tuple[str, str]] = (),
    body: Any = None,
    content_type: str | None = None,
    request_timeout: Any = None,
) -> Awaitable[Any]:
    """The request, to be awaited through ``call_json``: ``path`` with its ``{name}``
    placeholders filled from ``path_params`` (quoted as the generated API quotes them),
    ``body`` sent as JSON (``content_type``: application/json unless said).
    ``request_timeout``: the library's own per-request limit (a watch's read bound).
    """
    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return api.call_api(  # type: ignore[no-any-return]
        path,
        method,
        path_params=dict(path_params or {}),
        query_params=list(query),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=request_timeout,
    )


async def call(what: str, request: Awaitable[T], *, timeout: float) -> T:
    """Await ``request``, giving up after ``timeout`` seconds.

    ``what`` names the call in the error ("read scale of ml/ollama"). 403 raises
    Forbidden, 404 NotFound, any other failure KubeError (``status`` set when the
    server answered).
    """
    try:
        async with asyncio.timeout(timeout):
            return await request
    except ApiException as err:
        raise api_error(what, err) from err
    except TimeoutError as err:
        raise KubeError(f"{what}: no answer within {timeout:g} s") from err
    except (aiohttp.ClientError, ValueError) as err:
        raise KubeError(f"{what}: {type(err).__name__}: {err}") from err


async def call_json(
    what: str, request: Awaitable[Any], *, timeout: float, decode: Callable[[Any], T]
) -> T:
    """``call`` for a request made with ``_preload_content=False``: ``decode`` of its JSON.

    With ``_preload_content=False``, kubernetes-asyncio (checked with 36.x) returns the
    raw ``aiohttp.ClientResponse``: its body unread, its status unchecked, its
    connection still held. Here the body is read and the response released (the
    connection closed instead if the read was cut short), all within ``timeout``; an
    error status raises the ``ApiException`` the library would have raised, so the
    errors are those of ``call``. A malformed answer (``decode`` raises ValueError,
    TypeError, KeyError or AttributeError) is a KubeError too.
    """
    return await call(what, _read_json(request, decode), timeout=timeout)


async def _read_json(request: Awaitable[Any], decode: Callable[[Any], T]) -> T:
    response = await request
    async with response:
        data = await response.read()
    if not 200 <= response.status <= 299:
        raise status_error(response, data)
    try:
        return decode(json.loads(data))
    except (TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"malformed answer: {type(err).__name__}: {err}") from err


def status_error(response: aiohttp.ClientResponse, body: bytes) -> ApiException:
    """The ``ApiException`` kubernetes-asyncio raises for an error status, made from a
    raw answer (``_preload_content=False``) and its ``body``."""
    error = ApiException(status=response.status, reason=response.reason)
    error.body, error.headers = body, response.headers  # what http_resp= would set
    return error
