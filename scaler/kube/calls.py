"""One Kubernetes API call with a deadline, its failures translated into our errors.

kubernetes-asyncio raises ``ApiException`` for HTTP errors, aiohttp's errors for
connection trouble, and ``ValueError`` when a response fails its model validation;
callers of ``scaler.kube`` only ever see ``KubeError`` and its subclasses, with the
library's error chained as ``__cause__``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import TypeVar

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from scaler.kube.base import Forbidden, KubeError, NotFound

T = TypeVar("T")


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
