"""Speed and memory of ``scaler simulate`` on a 7-day trace at 1 s resolution.

Run:  .venv/bin/python -m benchmarks.bench_simulate [--days 7] [--rate 1.0] [--repeat N]

Writes a CSV trace (one row per second with the requests counted in it, about
``--rate`` requests/s with a daily swing, short chat answers so ten replicas can keep
up), then runs the real command
``scaler simulate --trace FILE --json`` with the two default policies (queue and
cpu-hpa) in a child process, and reports its wall time and peak memory (the largest
resident set of the command and of its worker processes, each measured separately).
Targets: <= 10 s wall and <= 300 MiB on our 2-core machines.

It measures the scaler package the interpreter imports: pure Python after
``pip install -e .``, or the mypyc-compiled hot path after
``SCALER_MYPYC=1 pip install .`` (docs/simulate.md, "Speed"); the line says which.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_trace(path: Path, days: float, rate: float) -> int:
    """A recorded-style trace: requests counted per second (Poisson around a daily
    swing), with mean token counts per second."""
    rng = random.Random(42)
    seconds = int(days * 86_400)
    with path.open("w", encoding="utf-8") as out:
        out.write("time,arrivals,prompt_tokens,completion_tokens\n")
        for t in range(seconds):
            daily = 1.0 + 0.8 * math.sin(2 * math.pi * (t % 86_400) / 86_400 - math.pi / 2)
            out.write(f"{t},{_poisson(rng, rate * daily)},60,25\n")
    return seconds


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means of a per-second count."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs; prints each, then the median")
    args = parser.parse_args()
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "week.csv"
        rows = write_trace(trace, args.days, args.rate)
        command = [sys.executable, "-m", "scaler.cli", "simulate", "--trace", str(trace), "--json"]
        for _ in range(max(1, args.repeat)):
            started = time.perf_counter()
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            walls.append(time.perf_counter() - started)
    wall = statistics.median(walls)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    build = subprocess.run(
        [sys.executable, "-c", "import scaler.simulate.runner as r; print(r.__file__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    kind = "pure Python" if build.endswith(".py") else "mypyc-compiled"
    figures = json.loads(done.stdout)
    requests = next(iter(figures["policies"].values()))["requests"]
    runs = "" if len(walls) == 1 else f" (median of {', '.join(f'{w:.2f}' for w in walls)})"
    print(
        f"simulate: {rows:,} s trace, {requests:,} requests, "
        f"{len(figures['policies'])} policies: {wall:.2f} s wall{runs}, "
        f"peak RSS {peak_kib / 1024:.0f} MiB (largest single process), {kind}"
    )


if __name__ == "__main__":
    main()
