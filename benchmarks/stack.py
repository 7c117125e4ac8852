"""One benchmark phase's child processes: a fake Ollama, the server under test in
front of it (``scaler proxy`` or ``scaler router``) and, if asked, the reference
forwarder beside it; each with its base URL and pid, and the server's RSS sampled
throughout. Shared by ``bench_proxy`` and ``bench_router``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks.processes import (
    RssSampler,
    proc_status_mib,
    start_fake,
    start_forwarder,
    stop,
)

Start = Callable[[str, int, int], tuple[subprocess.Popen[Any], str]]
"""Start the server under test in front of an upstream URL, with ``parallel`` slots
and ``max_queue``; its process and base URL."""


@dataclass(frozen=True)
class Server:
    """The server under test: ``scaler proxy`` (bench_proxy) or ``scaler router``
    (bench_router)."""

    name: str
    start: Start


@dataclass
class Stack:
    """The processes of one phase: the fake, the server under test, and (if asked) the
    reference forwarder, each with its base URL and pid."""

    name: str
    direct: str
    served: str
    pids: dict[str, int]
    rss: RssSampler
    idle_mib: float
    hwm_mib: float = 0.0
    forwarded: str = ""

    @property
    def server_pid(self) -> int:
        return self.pids[self.name]


@contextmanager
def running_stack(
    server: Server,
    fake: dict[str, Any],
    *,
    parallel: int,
    max_queue: int,
    forwarder: bool = False,
) -> Iterator[Stack]:
    """A fake Ollama and the server in front of it (and the reference forwarder beside
    it if ``forwarder``), all child processes, stopped after."""
    with ExitStack() as children:
        fake_child, direct = start_fake(fake)
        children.callback(stop, fake_child)
        child, served = server.start(direct, parallel, max_queue)
        children.callback(stop, child)
        pids = {server.name: child.pid, "fake": fake_child.pid}
        forwarded = ""
        if forwarder:
            forwarder_child, forwarded = start_forwarder(direct)
            children.callback(stop, forwarder_child)
            pids["forwarder"] = forwarder_child.pid
        with RssSampler(child.pid) as rss:
            idle = proc_status_mib(child.pid, "VmRSS")
            stack = Stack(server.name, direct, served, pids, rss, idle, forwarded=forwarded)
            yield stack
            stack.hwm_mib = proc_status_mib(child.pid, "VmHWM")
