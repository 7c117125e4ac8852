"""Bounds on the client connections of ``scaler proxy`` and ``scaler router``: how long
a new connection may take to send its first request head, how long a kept-alive one
may sit idle, and how many may be open at once.

aiohttp has the idle bound: its keep-alive timer (``keepalive_timeout``) closes a
connection that has not sent a whole request head that many seconds after it opened
or after its last answer; bytes arriving do not reset it. It has no bound of its own
on a *new* connection's head (a slowloris client sends one header byte at a time) and
none on the number of connections: each one holds a file descriptor, and at the
process's fd limit the event loop cannot accept at all, so ``/healthz``, ``/metrics``
and inference all go dark. Here every connection goes through a ``ConnectionGuard``:

- a connection whose first request head has not arrived ``header_timeout`` seconds
  after it opened is closed;
- past ``cap`` open connections, the oldest connection not inside a handler (idle, or
  still sending its head) is closed for each new one, so the newest (a probe, a
  scrape) is always served; if every connection is busy, the new one is closed.

The default cap comes from the fd limit, which is first raised to its hard limit:
half of what is left after ``FD_RESERVE`` (a client connection may hold an upstream
one too), at most ``DEFAULT_MAX_CONNECTIONS``.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

FD_RESERVE = 128
"""File descriptors kept out of the cap: one accept burst (``BACKLOG``: asyncio accepts
that many before any of them is counted), the listening sockets, the log, Python's own."""
BACKLOG = 64
FLOOD_WARNING_EVERY = 60.0
"""Seconds between warnings while the cap closes connections."""
DEFAULT_MAX_CONNECTIONS = 4096
"""Above this, memory (aiohttp's buffers per connection) matters more than fds."""

log = logging.getLogger("scaler.serving")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Seconds and counts, as the settings of ``scaler proxy`` and ``scaler router``
    give them; ``max_connections`` 0 means from the fd limit (``connection_cap``)."""

    header_timeout: float
    idle_timeout: float
    max_connections: int = 0


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft  # not allowed here: the cap follows the soft limit
        return hard
    return soft


def connection_cap(limits: ConnectionLimits, fd_limit: int) -> int:
    """``max_connections`` when given, else what ``fd_limit`` leaves (module doc)."""
    if limits.max_connections:
        return limits.max_connections
    if fd_limit == resource.RLIM_INFINITY:
        return DEFAULT_MAX_CONNECTIONS
    return max(8, min(DEFAULT_MAX_CONNECTIONS, (fd_limit - FD_RESERVE) // 2))


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, seen by the guard: when it opened, whether
    a request head has arrived, and how many handlers run on it now."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self.transport: asyncio.BaseTransport | None = None
        self.busy = 0
        self.started = False
        self._overdue: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._inner.connection_made(transport)
        loop = asyncio.get_running_loop()
        self._overdue = loop.call_later(self._guard.header_timeout, self._head_overdue)
        self._guard.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._overdue is not None:
            self._overdue.cancel()
        self._guard.closed(self)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def request_started(self) -> None:
        self.busy += 1
        if not self.started:
            self.started = True
            if self._overdue is not None:
                self._overdue.cancel()

    def close(self, why: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._guard.closed_by_guard[why] += 1
            self._guard.closed(self)  # no longer counted: the fd goes on the next turn
            self.transport.close()

    def _head_overdue(self) -> None:
        if not self.started:
            self.close("header_timeout")


class ConnectionGuard:
    """The open client connections, oldest first, and the bounds on them (module doc)."""

    def __init__(self, *, cap: int, header_timeout: float) -> None:
        self.cap = cap
        self.header_timeout = header_timeout
        self._open: dict[asyncio.BaseTransport, _Guarded] = {}  # insertion order: age
        self.closed_by_guard = {"header_timeout": 0, "over_cap": 0}
        self._warned_at: float | None = None  # loop time of the last flood warning

    @property
    def open(self) -> int:
        return len(self._open)

    def protocol(self, inner: asyncio.Protocol) -> asyncio.Protocol:
        return _Guarded(self, inner)

    def opened(self, connection: _Guarded) -> None:
        assert connection.transport is not None
        self._open[connection.transport] = connection
        if len(self._open) > self.cap:
            victim = next(
                (c for c in self._open.values() if not c.busy and c is not connection),
                connection,  # all busy: the newcomer goes
            )
            victim.close("over_cap")
            self._warn_of_flood()

    def _warn_of_flood(self) -> None:
        """One line a minute at most while connections are closed over the cap."""
        now = asyncio.get_running_loop().time()
        if self._warned_at is None or now - self._warned_at >= FLOOD_WARNING_EVERY:
            self._warned_at = now
            log.warning(
                "%d client connections open, the cap: closing the oldest idle ones "
                "(%d so far; a flood, or --max-connections too low)",
                self.cap,
                self.closed_by_guard["over_cap"],
            )

    def closed(self, connection: _Guarded) -> None:
        if connection.transport is not None:
            self._open.pop(connection.transport, None)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]
    ) -> Any:
        """Marks the connection busy while a handler runs on it (never evicted then)."""
        connection = self._open.get(request.transport) if request.transport else None
        if connection is None:
            return await handler(request)
        connection.request_started()
        try:
            return await handler(request)
        finally:
            connection.busy -= 1


class GuardedSite(web.BaseSite):
    """A TCP site (as ``web.TCPSite``) whose connections go through a guard."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard
    ) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._host, self._port, self._guard, self._owner = host, port, guard, runner

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._owner.server
        assert server is not None
        guard = self._guard
        self._server = await asyncio.get_running_loop().create_server(
            lambda: guard.protocol(server()),
            self._host,
            self._port,
            backlog=BACKLOG,
            reuse_address=True,
        )


async def start_guarded(
    app: web.Application, *, host: str, port: int, limits: ConnectionLimits, **runner: Any
) -> tuple[web.AppRunner, ConnectionGuard]:
    """Set up ``app`` on ``host:port`` behind a guard (its cap from ``limits``, else
    from the raised fd limit); ``runner`` options go to ``web.AppRunner``. The caller
    cleans the runner up, unless listening fails (it cleans up before raising)."""
    guard = ConnectionGuard(
        cap=connection_cap(limits, raise_fd_limit()), header_timeout=limits.header_timeout
    )
    app.middlewares.append(guard.middleware)
    app_runner = web.AppRunner(app, keepalive_timeout=limits.idle_timeout, **runner)
    await app_runner.setup()
    try:
        await GuardedSite(app_runner, host, port, guard).start()
    except BaseException:  # the app's cleanup contexts run even when listening fails
        await app_runner.cleanup()
        raise
    return app_runner, guard
