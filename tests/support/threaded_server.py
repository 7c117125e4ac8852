"""Serve an aiohttp app on 127.0.0.1 from its own thread and event loop.

Synchronous clients (``ollama.Client``, ``httpx.Client``) block the calling thread, so a
server they talk to cannot share the test's event loop. Here the app runs on a private
loop in a daemon thread; the test thread only starts, stops and joins it.

    with serve_in_thread(app) as url:              # "http://127.0.0.1:PORT"
        httpx.get(f"{url}/healthz")

    with ThreadedServer(make_app, handler_cancellation=True) as server:
        server.stop()                              # upstream down: connections refused
        server.start()                             # back on the same port, fresh app

``handler_cancellation`` is aiohttp's own switch, and aiohttp defaults it to False: a
handler then keeps running after its client disconnects and only notices at its next
write. Pass the value the production server uses, so tests see what production sees.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

CALL_TIMEOUT = 10.0
"""Seconds to wait for the server thread to start, stop, or run a call."""


class ThreadedServer:
    """One aiohttp app factory served from a private thread; restartable on the same port.

    ``app_factory`` is called on every ``start()``, because an aiohttp ``Application``
    that has been cleaned up cannot be started again.
    """

    def __init__(
        self,
        app_factory: Callable[[], web.Application],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        handler_cancellation: bool = False,
        shutdown_timeout: float = 0.5,
    ) -> None:
        self._app_factory = app_factory
        self.host = host
        self.port = port
        """0 until the first ``start()`` picks a free port; then fixed for restarts."""
        self._handler_cancellation = handler_cancellation
        if shutdown_timeout <= 0:
            raise ValueError("shutdown_timeout must be > 0: aiohttp reads 0 as 'wait forever'")
        self._shutdown_timeout = shutdown_timeout
        """Seconds ``stop()`` lets in-flight handlers finish before cancelling them."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("server thread not started")
        return self._loop

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the thread if needed, then listen (again) on ``port``."""
        if self._thread is None:
            self._start_thread()
        if self._runner is None:
            self.call(self._start_site)

    def stop(self) -> None:
        """Stop listening and drop open connections; the thread stays up for ``start()``."""
        if self._runner is not None:
            self.call(self._stop_site)

    def close(self) -> None:
        """Stop the server, end the loop and join the thread. Safe to call twice."""
        if self._thread is None:
            return
        try:
            self.stop()
        finally:
            loop, closed = self.loop, self._closed
            assert closed is not None
            loop.call_soon_threadsafe(closed.set)
            self._thread.join(CALL_TIMEOUT)
            if self._thread.is_alive():
                raise RuntimeError("server thread did not stop")
            self._thread = None
            self._loop = None

    def call(self, coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``coro_fn()`` on the server loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coro_fn(), self.loop)
        return future.result(CALL_TIMEOUT)

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Schedule a plain callback on the server loop (thread-safe, does not wait)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(fn)

    def _start_thread(self) -> None:
        ready = threading.Event()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._closed = asyncio.Event()
            ready.set()
            await self._closed.wait()

        thread = threading.Thread(
            target=asyncio.run, args=(main(),), name=f"server-{self.host}", daemon=True
        )
        thread.start()
        if not ready.wait(CALL_TIMEOUT):
            raise RuntimeError("server thread did not start")
        self._thread = thread

    async def _start_site(self) -> None:
        runner = web.AppRunner(
            self._app_factory(),
            handle_signals=False,
            handler_cancellation=self._handler_cancellation,
            shutdown_timeout=self._shutdown_timeout,
            access_log=None,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def _stop_site(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await asyncio.shield(runner.cleanup())


@contextmanager
def serve_in_thread(
    app: web.Application,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    handler_cancellation: bool = False,
) -> Iterator[str]:
    """Serve ``app`` from its own thread and loop; yield its base URL ``http://HOST:PORT``.

    For stop/restart use ``ThreadedServer`` with an app factory instead.
    """
    with ThreadedServer(
        lambda: app, host=host, port=port, handler_cancellation=handler_cancellation
    ) as server:
        yield server.url
