"""An HTTP/1.1 upstream on loopback that numbers its connections and can hang up.

For the proxy's keep-alive tests: which connection each request came on, and what a
connection that the upstream closes without answering does to the request on it.

    async with CountingUpstream() as upstream:     # upstream.url: http://127.0.0.1:PORT
        upstream.hang_up(1, how="fin")             # the next request: closed, unanswered
        ...
        upstream.seen  # [Seen(connection=1, path="/api/chat", size=42, answered=True), ...]

Every other request gets a 200 with a small JSON body (``Content-Length``, keep-alive),
shaped like Ollama's final chunk.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Literal

HangUp = Literal["fin", "rst"]
ANSWER = b'{"model":"llama3.2","done":true,"eval_count":3,"prompt_eval_count":2}\n'


@dataclass(frozen=True)
class Seen:
    connection: int
    """1 for the first connection the upstream accepted, 2 for the next, ..."""
    path: str
    size: int
    """Bytes of the request body received."""
    answered: bool


class CountingUpstream:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.connections = 0
        self._hang_ups: deque[HangUp] = deque()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hang_up(self, count: int, *, how: HangUp) -> None:
        """Close the connection of each of the next ``count`` requests once its body
        has arrived, without answering: with a FIN (``close``) or a RST (``abort``)."""
        self._hang_ups.extend([how] * count)

    async def __aenter__(self) -> CountingUpstream:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        try:
            while await self._one_request(number, reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the proxy closed the connection
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _one_request(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; False when the connection is over."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {
            k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:] if h)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if self._hang_ups:
            how = self._hang_ups.popleft()
            self.seen.append(Seen(number, path, len(body), answered=False))
            if how == "rst":
                writer.transport.abort()
            else:
                writer.close()
            return False
        self.seen.append(Seen(number, path, len(body), answered=True))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
            + ANSWER
        )
        await writer.drain()
        return True
