"""A burst between real processes: 2 Ollama pods growing to 8 mid-burst, the same
arrivals sent once behind ``scaler router`` and once to random per-pod queues.

- Pods: ``PODS`` fake Ollamas (one slot each, ``TOKENS_PER_SECOND``), all in one child
  process. Each fake queues excess requests FIFO without bound, as Ollama does.
- Answers: as long as the simulator's (``scaler.simulate.sampling``: lognormal, the
  same spread, p99 about 6x the median), scaled to ``SERVICE`` seconds on average: most
  answers are short, a few long, and a long one holds its pod's queue up.
- Router: a real ``scaler router`` child process that finds the pods through the fake
  API server's EndpointSlices (one slice per pod, since each fake has its own port),
  exactly as in the cluster; at ``GROW_AT`` the other 6 pods' slices are added.
- Random: the client picks a ready pod at random for each request (kube-proxy's pick
  behind a plain Service) and sends straight to it; at ``GROW_AT`` the 6 pods join.
- Arrivals: a seeded Poisson stream at ``RATE`` per second for ``LENGTH`` seconds, the
  same instants in both runs. Wait = time to the answer's first byte.

Goal (issue 11): p95 wait behind the router at least 3x lower than behind random; the
benchmark runs several seeds (arrivals and answer lengths) and holds the median to it.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.processes import HOST, ROOT, START_TIMEOUT, free_port, stop
from scaler.simulate.sampling import COMPLETION_SIGMA
from tests.support.fake_kube import FakeKube
from tests.support.fake_kube_watch import endpoint_slice, pod_endpoint

PODS, FIRST_PODS = 8, 2
SERVICE, TOKENS_PER_SECOND = 1.0, 20.0
"""Mean seconds per answer, and the fakes' decode speed."""
RATE, LENGTH, GROW_AT = 5.0, 24.0, 6.0
NAMESPACE, SERVICE_NAME = "bench", "ollama"
PODS_LAUNCHER = """
import json, signal, sys
from contextlib import ExitStack
from tests.support.fake_ollama import running_fake_ollama
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
settings, count = json.loads(sys.argv[1]), int(sys.argv[2])
with ExitStack() as stack:
    fakes = [stack.enter_context(running_fake_ollama(**settings)) for _ in range(count)]
    print(" ".join(str(f.port) for f in fakes), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
"""


@dataclass(frozen=True)
class BurstResult:
    waits: list[float]
    failures: int

    def p(self, q: float) -> float:
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def arrivals(seed: int = 1) -> list[tuple[float, int]]:
    """(seconds from the start, tokens in the answer) of each request."""
    rng = random.Random(seed)
    mean_tokens = SERVICE * TOKENS_PER_SECOND
    shrink = math.exp(-(COMPLETION_SIGMA**2) / 2)  # a lognormal's mean is median * e^(s^2/2)
    at = 0.0
    out: list[tuple[float, int]] = []
    while True:
        at += rng.expovariate(RATE)
        if at >= LENGTH:
            return out
        tokens = mean_tokens * rng.lognormvariate(0.0, COMPLETION_SIGMA) * shrink
        out.append((at, max(1, min(20 * int(mean_tokens), round(tokens)))))


def start_pods() -> tuple[subprocess.Popen[str], list[int]]:
    settings = {"slots": 1, "tokens_per_second": TOKENS_PER_SECOND}
    child = subprocess.Popen(
        [sys.executable, "-c", PODS_LAUNCHER, json.dumps(settings), str(PODS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    ports = child.stdout.readline().split()
    if len(ports) != PODS:
        stop(child)
        raise RuntimeError(f"the fake pods did not start (exit code {child.poll()})")
    return child, [int(p) for p in ports]


async def _first_byte(session: aiohttp.ClientSession, url: str, tokens: int) -> float:
    body = {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "options": {"num_predict": tokens},
    }
    sent = time.perf_counter()
    async with session.post(url + "/api/chat", json=body) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
        await response.content.readany()
        waited = time.perf_counter() - sent
        await response.read()
    return waited


async def _replay(pick: Any, grow: Any, times: list[tuple[float, int]]) -> BurstResult:
    """Send each request of ``times`` at its time (seconds from now) to ``pick()``'s
    URL; ``grow()`` at ``GROW_AT``."""
    waits: list[float] = []
    failures = 0
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()

        async def one(at: float, tokens: int) -> None:
            nonlocal failures
            await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
            try:
                waits.append(await _first_byte(session, pick(), tokens))
            except (aiohttp.ClientError, RuntimeError):
                failures += 1

        async def grower() -> None:
            await asyncio.sleep(GROW_AT)
            await grow()

        await asyncio.gather(grower(), *(one(at, tokens) for at, tokens in times))
    return BurstResult(waits, failures)


async def behind_random(
    ports: list[int], times: list[tuple[float, int]], seed: int = 1
) -> BurstResult:
    rng = random.Random(seed)
    ready = [f"http://{HOST}:{p}" for p in ports[:FIRST_PODS]]

    async def grow() -> None:
        ready[:] = [f"http://{HOST}:{p}" for p in ports]

    return await _replay(lambda: rng.choice(ready), grow, times)


def _slice(index: int, port: int) -> dict[str, Any]:
    pod = f"ollama-{index}"
    return endpoint_slice(
        NAMESPACE,
        f"{SERVICE_NAME}-{index}",
        service=SERVICE_NAME,
        endpoints=[pod_endpoint(pod, HOST)],
        ports=[("http", port)],
    )


async def behind_router(ports: list[int], times: list[tuple[float, int]]) -> BurstResult:
    async with FakeKube() as kube:
        for i in range(FIRST_PODS):
            kube.slices.add(_slice(i, ports[i]))
        with tempfile.TemporaryDirectory() as tmp:
            config = kube.write_kubeconfig(Path(tmp) / "kubeconfig", namespace=NAMESPACE)
            router, url = await _start_router(config)
            try:

                async def grow() -> None:
                    for i in range(FIRST_PODS, PODS):
                        kube.slices.add(_slice(i, ports[i]))

                return await _replay(lambda: url, grow, times)
            finally:
                stop(router)


async def _start_router(kubeconfig: Path) -> tuple[subprocess.Popen[Any], str]:
    port = free_port()
    argv = [sys.executable, "-m", "scaler.cli", "router", "--host", HOST, "--port", str(port)]
    argv += ["--service", SERVICE_NAME, "--namespace", NAMESPACE, "--kubeconfig", str(kubeconfig)]
    argv += ["--port-name", "http", "--max-queue", "1000", "--log-level", "warning"]
    child = subprocess.Popen(argv, cwd=ROOT)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and child.poll() is None:
            try:
                async with session.get(url + "/readyz") as answer:
                    if answer.status == 200:
                        return child, url
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)  # the fake API server runs on this loop too
    stop(child)
    raise RuntimeError(f"the router did not start (exit code {child.poll()})")


async def run_burst(seed: int = 1) -> tuple[BurstResult, BurstResult]:
    """(behind the router, behind random per-pod queues) on the same arrivals."""
    times = arrivals(seed)
    pods, ports = start_pods()
    try:
        router = await behind_router(ports, times)
        await asyncio.sleep(2 * SERVICE)  # both runs start with idle pods
        spread = await behind_random(ports, times, seed)
    finally:
        stop(pods)
    return router, spread


def main() -> None:
    router, spread = asyncio.run(run_burst())
    for name, result in (("router", router), ("random", spread)):
        print(
            f"{name:7} n={len(result.waits)} failed={result.failures} "
            f"p50={result.p(0.5):.2f}s p95={result.p(0.95):.2f}s max={max(result.waits):.2f}s"
        )
    print(f"p95 ratio random/router: {spread.p(0.95) / router.p(0.95):.1f}x (goal >= 3x)")


if __name__ == "__main__":
    main()
