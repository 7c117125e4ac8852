"""TCP keepalive and ``TCP_USER_TIMEOUT`` on the upstream sockets of ``scaler proxy``
and ``scaler router``, so that a peer lost without closing its connections (a node
gone, not a process killed) is noticed within a bound.

Forwarding has no read timeout on purpose: Ollama writes nothing until its first
token, which may take minutes. Without these options such a connection waits until
TCP gives up on retransmissions (``tcp_retries2`` = 15: about 15 minutes) or, if
nothing is left unacknowledged (the request was ACKed, the answer is silent), forever.
The options are what Envoy's ``upstream_connection_options.tcp_keepalive`` and gRPC's
keepalive do for long-lived upstream connections. A live peer's kernel answers the
probes itself, however long Ollama stays silent, so a slow prefill is never cut; a
dead one is given up after ``idle + interval x count`` seconds of silence, and the
read fails with ``ETIMEDOUT``, as when a peer resets the connection.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

PROBES = 3
"""Unanswered probes before the peer counts as lost."""

AddrInfo = tuple[int | socket.AddressFamily, int | socket.SocketKind, int, str, tuple[Any, ...]]
"""One ``getaddrinfo`` entry: what aiohttp's ``socket_factory`` is given."""


@dataclass(frozen=True, slots=True)
class UpstreamKeepalive:
    """``idle``: whole seconds of silence on a connection before the first probe; 0
    turns the options off (the kernel's defaults: no keepalive). Probes follow every
    ``interval`` (a third of ``idle``, at least 1 s), ``PROBES`` of them."""

    idle: int

    @property
    def interval(self) -> int:
        return max(1, self.idle // PROBES)

    @property
    def bound(self) -> int:
        """Seconds of silence from a lost peer before its connection fails: 0 when off."""
        return self.idle + self.interval * PROBES if self.idle else 0

    def apply(self, sock: socket.socket) -> None:
        """Set the options on ``sock`` (before or after its connect). Only TCP sockets
        are touched, and only the options this platform has (all of them on Linux)."""
        if not self.idle or sock.type != socket.SOCK_STREAM:
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", self.idle),
            ("TCP_KEEPINTVL", self.interval),
            ("TCP_KEEPCNT", PROBES),
            # Data left unacknowledged (a request sent to a lost peer) fails within the
            # same bound; with keepalive on, Linux also uses it to end the probing.
            ("TCP_USER_TIMEOUT", self.bound * 1000),
        ):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)

    def socket_factory(self, addr_info: AddrInfo) -> socket.socket:
        """A new socket for ``addr_info`` with the options set: aiohttp's
        ``TCPConnector(socket_factory=...)`` connects it."""
        family, kind, proto, _, _ = addr_info
        sock = socket.socket(family=family, type=kind, proto=proto)
        try:
            self.apply(sock)
        except OSError:
            sock.close()
            raise
        return sock
