"""``scaler router``: what it adds to latency, first byte and throughput, what each
streamed request costs it in CPU, its memory; and what it saves during a burst.

Run (about 5 minutes; ``--phases burst`` alone about one):
  .venv/bin/python -m benchmarks.bench_router [--phases latency first-byte stress paced
      cpu burst] [--seeds 1 2 3] [the other options of benchmarks.bench_proxy]

The first five phases are ``benchmarks.bench_proxy``'s, run against a real ``scaler
router`` child process (``--endpoint`` the fake Ollama, ``--parallel`` its slots) instead
of the proxy: every figure compares it with a direct connection to the same fake in the
same run, and the CPU phase with the reference aiohttp forwarder. Goals (issue 11):
added p50 latency <= 1 ms, time to first byte + <= 2 ms, throughput >= 0.9x direct at
200 concurrent streams, RSS <= 80 MiB, CPU per streamed request at saturation <= 0.55 ms
(20-token answers).

burst: ``benchmarks.router_burst``: 2 fake pods growing to 8 mid-burst, the same seeded
arrivals and answer lengths behind the router (discovery through the fake API server's
EndpointSlices) and behind random per-pod queues, for each of ``--seeds`` (1-5, about a
minute each). Goal: the median over the seeds of the p95 wait is at least 3x lower
behind the router.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from benchmarks.bench_proxy import PHASES, parser_for, report, run_phases
from benchmarks.processes import start_router
from benchmarks.report import Row
from benchmarks.router_burst import run_burst
from benchmarks.stack import Server

ROUTER = Server("router", start_router)
BURST_GOAL = 3.0


def burst_rows(seeds: list[int]) -> list[Row]:
    """One row per seed (p95 wait behind random | behind the router) and the median
    ratio, which the goal holds."""
    rows, ratios = [], []
    for seed in seeds:
        router, spread = asyncio.run(run_burst(seed))
        for name, result in (("router", router), ("random", spread)):
            print(
                f"burst seed {seed}, {name}: {len(result.waits)} requests, "
                f"{result.failures} failed; wait p50 {result.p(0.5):.2f} s, "
                f"p95 {result.p(0.95):.2f} s, max {max(result.waits):.2f} s"
            )
        if router.failures or spread.failures:
            raise RuntimeError(f"burst seed {seed}: requests failed")
        ratios.append(spread.p(0.95) / router.p(0.95))
        rows.append(
            Row(
                f"burst p95 s rand|rt s{seed}", spread.p(0.95), router.p(0.95), f"{ratios[-1]:.1f}x"
            )
        )
    median = statistics.median(ratios)
    rows.append(
        Row(
            "burst p95 ratio, median", None, median, "", f">= {BURST_GOAL:g}x", median >= BURST_GOAL
        )
    )
    return rows


def main() -> None:
    parser = parser_for(ROUTER, (*PHASES, "burst"))
    parser.description = "scaler router against direct connections, and a burst"
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="burst arrivals"
    )
    args = parser.parse_args()
    started = time.monotonic()
    peaks: list[float] = []
    rows = run_phases(args, peaks)
    if "burst" in args.phases:
        rows += burst_rows(args.seeds)
    report(args, rows, peaks, started)


if __name__ == "__main__":
    main()
