"""``bench_controller footprint``: what ``scaler run`` costs with N targets at rest.

``scaler run`` runs as a child process against a real Prometheus (1 s scrape of a
steerable exporter) and the fake Kubernetes API over loopback HTTP, with ``--targets``
targets in as many namespaces (2 pods each), polling every ``--poll`` seconds. Nothing
changes during the run. After start-up (three ticks), for ``--seconds``:

- Kubernetes API requests per second, from the fake API's request log, by verb and
  resource (the start-up's lists and watches are reported apart);
- Prometheus queries per tick: Prometheus's own count of ``/api/v1/query`` requests
  over the controller's count of ticks (``scaler_poll_duration_seconds_count``);
- CPU time (utime + stime from /proc) over the wall time, and the peak resident memory;
- failed metric reads (``scaler_metric_errors_total``): a figure with failures is void.

Goals (issue 16): 100 targets at a 1 s poll <= 1 API request/s, <= 8 % of a core,
<= 100 MiB; 1,000 targets at a 2 s poll <= 40 % of a core.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from benchmarks.controller_rig import config, seed
from benchmarks.processes import HOST, free_port
from tests.support.exporter import running_exporter
from tests.support.fake_kube import FakeKube
from tests.support.fake_kube_watch import request_counts
from tests.support.prometheus_server import prometheus_server, scrape_job, wait_for

START_TIMEOUT = 600.0
"""Seconds ``scaler run`` may take to tick three times (1,000 targets list a lot)."""


@dataclass
class Reading:
    """Counters read at one instant of the run."""

    wall: float
    cpu: float
    requests: int  # in the fake API's log
    queries: float  # Prometheus's /api/v1/query requests
    ticks: float  # the controller's
    errors: float  # the controller's failed metric reads


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _counter(session: aiohttp.ClientSession, url: str, name: str, has: str = "") -> float:
    """The sum of ``name``'s samples (whose labels contain ``has``) at ``url``/metrics."""
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " ") and has in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _read(
    session: aiohttp.ClientSession, pid: int, kube: FakeKube, prometheus: str, scaler: str
) -> Reading:
    handler = 'handler="/api/v1/query"'
    return Reading(
        wall=time.monotonic(),
        cpu=proc_cpu_seconds(pid),
        requests=len(kube.requests),
        queries=await _counter(session, prometheus, "prometheus_http_requests_total", handler),
        ticks=await _counter(session, scaler, "scaler_poll_duration_seconds_count"),
        errors=await _counter(session, scaler, "scaler_metric_errors_total"),
    )


async def _started(session: aiohttp.ClientSession, scaler: str, pid: int) -> float:
    """Wait for three ticks; the peak RSS meanwhile."""
    deadline, peak = time.monotonic() + START_TIMEOUT, 0.0
    while time.monotonic() < deadline:
        peak = max(peak, proc_rss_mib(pid))
        try:
            if await _counter(session, scaler, "scaler_poll_duration_seconds_count") >= 3:
                return peak
        except aiohttp.ClientError:
            pass  # not listening yet
        await asyncio.sleep(0.5)
    raise TimeoutError(f"scaler run did not tick three times in {START_TIMEOUT:g} s")


async def _measure(
    child: asyncio.subprocess.Process, kube: FakeKube, prometheus: str, port: int, seconds: float
) -> str:
    scaler = f"http://{HOST}:{port}"
    async with aiohttp.ClientSession() as session:
        peak = await _started(session, scaler, child.pid)
        start = await _read(session, child.pid, kube, prometheus, scaler)
        while time.monotonic() - start.wall < seconds:
            await asyncio.sleep(0.5)
            peak = max(peak, proc_rss_mib(child.pid))
        end = await _read(session, child.pid, kube, prometheus, scaler)
    wall = end.wall - start.wall
    steady = request_counts(kube.requests[start.requests : end.requests])
    startup = request_counts(kube.requests[: start.requests])
    # Our own read of Prometheus's counter is not one of its queries: none counted.
    queries = (end.queries - start.queries) / max(1.0, end.ticks - start.ticks)
    return (
        f"{100 * (end.cpu - start.cpu) / wall:.1f} % of a core, peak RSS {peak:.0f} MiB, "
        f"{(end.requests - start.requests) / wall:.2f} Kubernetes API requests/s at rest "
        f"({_top(steady)}), start-up {start.requests} ({_top(startup)}), "
        f"{queries:.2f} Prometheus queries per tick over {end.ticks - start.ticks:.0f} ticks, "
        f"{end.errors - start.errors:.0f} failed metric reads"
    )


def _top(counts: Counter[tuple[str, str]]) -> str:
    shown = ", ".join(f"{verb} {resource} {n}" for (verb, resource), n in counts.most_common(4))
    return shown or "none"


async def footprint(targets: int, seconds: float, poll: float) -> None:
    namespaces = [f"bench-{i}" for i in range(targets)]
    with tempfile.TemporaryDirectory() as tmp, running_exporter() as exporter:
        job = scrape_job("exporter", exporter.target)
        with prometheus_server(Path(tmp) / "p", scrape_configs=[job], scrape_interval=1.0) as p:
            async with FakeKube() as kube:
                for ns in namespaces:
                    seed(kube, exporter, ns)
                wait_for(p, 'up{job="exporter"} == 1')
                port = free_port()
                path = Path(tmp) / "scaler.yaml"
                data = config(p.url, namespaces, pollInterval=poll, metricsPort=port)
                path.write_text(yaml.safe_dump(data))
                kubeconfig = str(kube.write_kubeconfig(Path(tmp) / "kubeconfig"))
                env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
                child = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "scaler.cli", "run", "--config", str(path),
                    "--kubeconfig", kubeconfig, "--log-level", "warning",
                    env=env, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    result = await _measure(child, kube, p.url, port, seconds)
                finally:
                    child.terminate()
                    code = await child.wait()
    print(
        f"footprint with {targets} target(s) at a {poll:g} s poll over {seconds:.0f} s: "
        f"{result}; exit code {code}"
    )
