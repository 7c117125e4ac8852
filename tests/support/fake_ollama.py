"""A fake Ollama server that speaks Ollama's wire format, for tests of ``scaler proxy``.

    with running_fake_ollama(slots=2, prefill=0.1) as fake:
        client = ollama.Client(host=fake.url)          # the official client works
        fake.fail_next(1, status=503)                  # inject a busy answer
        fake.die_next(after_tokens=3)                  # drop the next stream mid-way
        fake.wait_until(lambda s: s.waiting == 2)      # counters: FakeOllamaStats
        fake.stop(); fake.start()                      # upstream down, then back

    store = ModelStore()                               # one models volume, two fakes:
    with running_fake_ollama(store=store) as writer, running_fake_ollama(store=store) as pod:
        ...                                            # writer's pulls are on pod too

It runs in its own thread and event loop (``tests/support/threaded_server.py``), so synchronous
clients may block on it. Its model of Ollama (``stack.md`` §1.3-1.5):

- ``slots`` (``OLLAMA_NUM_PARALLEL``) requests run at once; the rest wait FIFO without
  bound and without a byte on the wire, as Ollama does for a loaded model.
- Status line and headers go out with the first token: TTFB = load + slot wait + prefill.
- A client that disconnects is cancelled at once (aiohttp ``handler_cancellation``, like
  Go's request context) and its slot is freed.
- ``stop()`` unloads every model, as a restarted Ollama would have nothing loaded.

Routes: see ``fake_ollama_native`` (``/api/generate|chat|embed|embeddings``),
``fake_ollama_openai`` (``/v1/chat/completions|completions|embeddings``),
``fake_ollama_media`` (``/v1/images/...``, ``/v1/audio/transcriptions``),
``fake_ollama_anthropic`` (``/v1/messages``), ``fake_ollama_models`` (probes and
models) and ``fake_ollama_blobs`` (``/api/blobs``, ``/api/create``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from tests.support import (
    fake_ollama_anthropic,
    fake_ollama_blobs,
    fake_ollama_media,
    fake_ollama_models,
    fake_ollama_native,
    fake_ollama_openai,
)
from tests.support.fake_ollama_anthropic import error_payload as anthropic_error
from tests.support.fake_ollama_core import FAKE, ApiError, FakeOllama
from tests.support.fake_ollama_openai import error_payload
from tests.support.fake_ollama_settings import (
    BUSY_ERROR,
    FakeOllamaSettings,
    FakeOllamaStats,
    LoggedRequest,
)
from tests.support.fake_ollama_shapes import answer_text, answer_tokens
from tests.support.fake_ollama_store import ModelStore
from tests.support.threaded_server import ThreadedServer

__all__ = [
    "BUSY_ERROR",
    "FakeOllama",
    "FakeOllamaSettings",
    "FakeOllamaStats",
    "LoggedRequest",
    "ModelStore",
    "RunningFakeOllama",
    "answer_text",
    "answer_tokens",
    "make_app",
    "running_fake_ollama",
]


@web.middleware
async def _log_and_render_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    fake = request.app[FAKE]
    raw = await request.read() if request.can_read_body else b""
    fake.log_request(request.method, request.path, _parse(raw), raw)
    try:
        return await handler(request)
    except ApiError as error:
        if request.path == "/v1/messages":
            payload = anthropic_error(error.status, error.message)
            return web.json_response(payload, status=error.status)
        if request.path.startswith("/v1/"):
            return web.json_response(
                error_payload(error.status, error.message), status=error.status
            )
        return web.json_response({"error": error.message}, status=error.status)


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def make_app(fake: FakeOllama) -> web.Application:
    """A fresh aiohttp app over ``fake``'s state (one per server start)."""
    # Ollama reads bodies of any size (images, long contexts); aiohttp's default is 1 MiB.
    app = web.Application(middlewares=[_log_and_render_errors], client_max_size=1 << 30)
    app[FAKE] = fake

    async def bind(app: web.Application) -> None:
        fake.bind_loop(asyncio.get_running_loop())

    async def forget_loaded(app: web.Application) -> None:
        fake.unload_all()

    app.on_startup.append(bind)
    app.on_cleanup.append(forget_loaded)
    fake_ollama_native.add_routes(app)
    fake_ollama_openai.add_routes(app)
    fake_ollama_models.add_routes(app)
    fake_ollama_blobs.add_routes(app)
    fake_ollama_anthropic.add_routes(app)
    fake_ollama_media.add_routes(app)
    return app


class RunningFakeOllama(FakeOllama):
    """A ``FakeOllama`` served on 127.0.0.1; see ``running_fake_ollama``."""

    def __init__(
        self, settings: FakeOllamaSettings, *, port: int = 0, store: ModelStore | None = None
    ) -> None:
        super().__init__(settings, store=store)
        self.server = ThreadedServer(
            lambda: make_app(self),
            port=port,
            handler_cancellation=True,  # Go cancels the request context on disconnect
            shutdown_timeout=0.01,  # stop() drops in-flight requests, as a dead pod does
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``"""
        return self.server.url

    @property
    def host_port(self) -> str:
        """``127.0.0.1:PORT``, the form ``OLLAMA_HOST`` takes."""
        return self.server.host_port

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        """Listen again on the same port (after ``stop()``)."""
        self.server.start()

    def stop(self) -> None:
        """Go down: refuse connections, drop open ones, forget loaded models."""
        self.server.stop()


@contextmanager
def running_fake_ollama(
    *, store: ModelStore | None = None, **settings: Any
) -> Iterator[RunningFakeOllama]:
    """Run a fake Ollama on a free 127.0.0.1 port in its own thread; ``settings`` are
    ``FakeOllamaSettings`` fields (``slots``, ``tokens``, ``tokens_per_second``,
    ``load_delay``, ``prefill``, ``models``, ...). ``store``: a ``ModelStore`` shared
    with other fakes, as pods share the models volume (default: a private one)."""
    fake = RunningFakeOllama(FakeOllamaSettings(**settings), store=store)
    with fake.server:
        yield fake
