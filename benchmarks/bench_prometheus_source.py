"""Throughput and latency of ``PrometheusSource.value()`` against a real Prometheus.

Run:  .venv/bin/python -m benchmarks.bench_prometheus_source [--seconds 5] [--rounds 20]

Starts the test exporter and a real Prometheus scraping it every second (as the
``scraped_prometheus`` test fixture does), exports a queue depth for 100 namespaces of
3 pods (100 targets), then measures on one ``aiohttp.ClientSession``:

- sequential queries per second: one ``value()`` at a time, for ``--seconds``;
- concurrent queries per second: 100 in flight at all times, for ``--seconds``;
- latency p50/p95/max of a burst of 100 concurrent queries (one per target, as a
  controller tick issues them), over ``--rounds`` bursts, and each burst's wall time;
- the same burst as bare ``GET`` + ``json.loads``, to show what the source adds.

The controller needs (targets x metrics) queries per tick: 200/s for 100 targets with
two metrics at 1 s, and each burst must end well inside the tick.
Needs ``prometheus`` and ``promtool`` on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from scaler.sources.prometheus import PrometheusSource
from tests.support.exporter import running_exporter
from tests.support.prometheus_server import prometheus_server, scrape_job, wait_for

TARGETS = 100
PODS = 3


def _query(target: int) -> str:
    return f'sum(ollama_proxy_queue_depth{{namespace="bench-{target}"}})'


async def _rate(
    call: Callable[[int], Awaitable[object]], seconds: float, concurrency: int
) -> float:
    """Calls per second with ``concurrency`` workers calling back to back."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while time.perf_counter() < deadline:
            await call(i % TARGETS)
            done += 1
            i += concurrency

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for offset in range(concurrency):
            group.create_task(worker(offset))
    return done / (time.perf_counter() - started)


async def _bursts(
    call: Callable[[int], Awaitable[object]], rounds: int
) -> tuple[list[float], list[float]]:
    """Per-query latencies and per-burst wall times, seconds, of ``rounds`` bursts."""
    latencies: list[float] = []
    walls: list[float] = []

    async def timed(target: int) -> None:
        started = time.perf_counter()
        await call(target)
        latencies.append(time.perf_counter() - started)

    for _ in range(rounds):
        started = time.perf_counter()
        await asyncio.gather(*(timed(t) for t in range(TARGETS)))
        walls.append(time.perf_counter() - started)
    return latencies, walls


def _ms(values: list[float], q: int) -> float:
    return 1000 * statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _report(name: str, latencies: list[float], walls: list[float]) -> None:
    print(
        f"{name}: latency p50 {_ms(latencies, 50):.1f} ms, p95 {_ms(latencies, 95):.1f} ms, "
        f"max {1000 * max(latencies):.1f} ms; burst wall p50 {_ms(walls, 50):.1f} ms, "
        f"max {1000 * max(walls):.1f} ms"
    )


async def measure(url: str, seconds: float, rounds: int) -> None:
    async with aiohttp.ClientSession() as session:
        source = PrometheusSource(session, url, timeout=2.0, staleness=5.0)

        async def value(target: int) -> object:
            return await source.value(_query(target), now=time.time())

        async def bare(target: int) -> object:
            params = {"query": _query(target), "time": f"{time.time():.3f}"}
            async with session.get(f"{url}/api/v1/query", params=params) as response:
                return json.loads(await response.read())

        for target in range(TARGETS):  # warm the connection pool; every target scraped
            await value(target)
        print(f"sequential value(): {await _rate(value, seconds, 1):.0f} queries/s")
        print(f"100 in flight value(): {await _rate(value, seconds, TARGETS):.0f} queries/s")
        _report("burst of 100 value()", *await _bursts(value, rounds))
        _report("burst of 100 bare GETs", *await _bursts(bare, rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput run")
    parser.add_argument("--rounds", type=int, default=20, help="bursts of 100 queries")
    args = parser.parse_args()
    with running_exporter() as exporter, tempfile.TemporaryDirectory() as workdir:
        for target in range(TARGETS):
            for pod in range(PODS):
                exporter.set_queue_depth(f"ollama-{pod}", pod, namespace=f"bench-{target}")
        job = scrape_job("exporter", exporter.target)
        with prometheus_server(Path(workdir), scrape_configs=[job], scrape_interval=1.0) as p:
            wait_for(p, 'up{job="exporter"} == 1')
            asyncio.run(measure(p.url, args.seconds, args.rounds))


if __name__ == "__main__":
    main()
