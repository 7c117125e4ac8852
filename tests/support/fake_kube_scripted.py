"""What reaches the fake API server and how it is answered before any endpoint runs.

``FakeKube`` (``tests/support/fake_kube.py``) is a ``Scripted``: its middleware records
every request (``requests``, ``calls``), counts those in flight, checks the bearer
token, and applies the failures and delays a test scripted (``fail``, ``delay``)
before the handler; it renders every ``ApiError`` as a ``Status`` answer, and an
unknown route as the apiserver's 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.fake_kube_protocol import ApiError

TOKEN = "fake-token"
"""The bearer token the fake expects (and ``write_kubeconfig`` writes)."""


@dataclass(frozen=True)
class Request:
    """One request as the fake received it; ``body`` is the parsed JSON (or None)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    content_type: str


@dataclass
class _Script:
    method: str
    pattern: re.Pattern[str]
    times: int | None
    status: int | None = None
    reason: str | None = None
    message: str | None = None
    delay: float = 0.0
    released: asyncio.Event = field(default_factory=asyncio.Event)


class Scripted:
    """The recorded requests and the scripted answers of one fake server."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests the fake was handling at one time."""
        self._scripts: list[_Script] = []

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        times: int | None = 1,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests (None: all) with a Status error.

        ``path_pattern`` is a regular expression searched in the request path.
        """
        self._scripts.append(
            _Script(method, re.compile(path_pattern), times, status, reason, message)
        )

    def delay(
        self, method: str, path_pattern: str, seconds: float = math.inf, *, times: int | None = 1
    ) -> asyncio.Event:
        """Hold matching requests for ``seconds`` (default until released or closed).

        Returns an event: set it to let the held requests through at once.
        """
        script = _Script(method, re.compile(path_pattern), times, delay=seconds)
        self._scripts.append(script)
        return script.released

    def calls(self, method: str, path_pattern: str = "") -> list[Request]:
        """The recorded requests with this method whose path matches the pattern."""
        pattern = re.compile(path_pattern)
        return [r for r in self.requests if r.method == method and pattern.search(r.path)]

    def _take_script(self, method: str, path: str) -> _Script | None:
        for script in self._scripts:
            if script.method == method and script.pattern.search(path) and script.times != 0:
                if script.times is not None:
                    script.times -= 1
                return script
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.text()
        body = json.loads(raw) if raw and "json" in request.content_type else (raw or None)
        self.requests.append(
            Request(request.method, request.path, dict(request.query), body, request.content_type)
        )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                raise ApiError(401, "Unauthorized")
            script = self._take_script(request.method, request.path)
            if script is not None and script.delay > 0:
                timeout = None if math.isinf(script.delay) else script.delay
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(script.released.wait(), timeout)
            if script is not None and script.status is not None:
                message = script.message or f"scripted {script.status} for {request.path}"
                raise ApiError(script.status, message, reason=script.reason)
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as err:
            return err.response()
        except web.HTTPException as err:  # no such route, or method not allowed
            text = "the server could not find the requested resource"
            return ApiError(err.status, text if err.status == 404 else err.reason).response()
        finally:
            self.in_flight -= 1

    def release_held(self) -> None:
        """Let every request held by ``delay`` through (the server is closing)."""
        for script in self._scripts:
            script.released.set()
