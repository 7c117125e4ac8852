"""CPU per streamed request, measured while the machine is saturated.

A closed loop: ``streams`` clients each send a streaming ``/api/chat`` (``tokens``
tokens, the fake at full speed), read it to the end and send the next one, for
``seconds``. With enough streams the client, the server under test and the fake
Ollama keep every core busy, so a cost that is paid per request or per chunk shows up
as CPU seconds divided by the streams completed (utime + stime from ``/proc``, which
counts every thread of the process). Streams still running at the deadline finish and
are counted: the CPU read after the loop includes theirs.

    loads = asyncio.run(saturate({"direct": direct, "proxy": proxied},
                                 {"proxy": proxy_pid, "fake": fake_pid}, ...))
    loads["proxy"].per_stream_ms("proxy")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from benchmarks.processes import cpu_seconds

MODEL = "llama3.2"
CLIENT = "client"
"""The name this process (the load generator) gets in ``Load.cpu``."""


async def stream_tokens(session: aiohttp.ClientSession, url: str, tokens: int) -> int:
    """One streamed chat; returns the token chunks received (the final one excluded)."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "options": {"num_predict": tokens},
    }
    lines = 0
    async with session.post(url + "/api/chat", json=body) as response:
        async for chunk in response.content.iter_any():
            lines += chunk.count(b"\n")
        if response.status != 200:
            raise RuntimeError(f"{url}: /api/chat answered {response.status}")
    return lines - 1


async def closed_loop(url: str, *, streams: int, seconds: float, tokens: int) -> int:
    """``streams`` concurrent clients, each starting its next stream as soon as the last
    one ended, until ``seconds`` have passed; the number of complete streams."""
    deadline = time.perf_counter() + seconds
    completed = 0

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal completed
        while time.perf_counter() < deadline:
            received = await stream_tokens(session, url, tokens)
            if received != tokens:
                raise RuntimeError(f"{url}: a stream brought {received} tokens of {tokens}")
            completed += 1

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(streams)))
    return completed


@dataclass
class Load:
    """One target's rounds: streams completed, wall seconds, CPU seconds per process."""

    streams: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Streams per second."""
        return self.streams / self.seconds

    def per_stream_ms(self, process: str) -> float:
        return self.cpu[process] / self.streams * 1e3

    def cores(self) -> str:
        used = {name: seconds / self.seconds for name, seconds in self.cpu.items()}
        parts = ", ".join(f"{name} {cores:.2f}" for name, cores in used.items())
        return f"{parts} (total {sum(used.values()):.2f})"


def cpu_now(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each process in ``pids`` and of this one (as ``CLIENT``)."""
    now = {name: cpu_seconds(pid) for name, pid in pids.items()}
    now[CLIENT] = time.process_time()
    return now


async def in_rounds(
    targets: dict[str, str],
    pids: dict[str, int],
    rounds: int,
    run: Callable[[str], Awaitable[int]],
) -> dict[str, Load]:
    """``rounds`` rounds of ``run(url)`` (which returns the streams it completed) per
    target, the order rotating each round (ABBA for two) so drift in the machine's load
    spreads over all targets; the CPU of every process read around each run."""
    loads = {name: Load() for name in targets}
    names = list(targets)
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            before, started = cpu_now(pids), time.perf_counter()
            count = await run(targets[name])
            elapsed, after = time.perf_counter() - started, cpu_now(pids)
            load = loads[name]
            load.streams += count
            load.seconds += elapsed
            for process, used in after.items():
                load.cpu[process] = load.cpu.get(process, 0.0) + used - before[process]
    return loads


async def saturate(
    targets: dict[str, str],
    pids: dict[str, int],
    *,
    streams: int,
    seconds: float,
    rounds: int,
    tokens: int,
) -> dict[str, Load]:
    """``rounds`` closed loops of ``seconds`` per target; see ``in_rounds``."""

    def run(url: str) -> Awaitable[int]:
        return closed_loop(url, streams=streams, seconds=seconds, tokens=tokens)

    return await in_rounds(targets, pids, rounds, run)
