"""``scaler run``: reaction time and footprint, with real parts.

Run:
  .venv/bin/python -m benchmarks.bench_controller reaction [--trials 20] [--direct]
  .venv/bin/python -m benchmarks.bench_controller reaction --push [--trials 30]
  .venv/bin/python -m benchmarks.bench_controller footprint [--targets 1] [--seconds 30] [--poll 1]

Both start a real Prometheus (Debian's, 1 s scrape) scraping a steerable exporter, and
the fake Kubernetes API server; the controller talks to both over loopback HTTP with
the real clients.

- reaction: the exporter's queue gauge steps from 0 to 8; the time until the fake
  API receives the PATCH of the scale subresource, over ``--trials`` steps (the
  controller polls every 1 s; the policy lets it scale at once and back down at
  once between trials). Goal: p95 <= 3 s; with ``--direct`` (the controller reads
  the pods' proxies, here stand-ins on 127.0.0.50-51), p95 <= 1 s.
- reaction --push: a real ``scaler router`` pushes its queue to ``scaler run``, both
  child processes; push and poll timed in one run (``benchmarks/push_reaction.py``).
  Goal: push p95 <= 0.2 s over 30 trials.
- footprint: ``scaler run`` as a child process with ``--targets`` targets (2 pods
  each) at a ``--poll`` s poll, at rest for ``--seconds``: Kubernetes API requests per
  second (the fake API's log), Prometheus queries per tick, CPU and peak RSS
  (``benchmarks/footprint.py``). Goals: 100 targets <= 1 API request/s, <= 8 % of a
  core, <= 100 MiB; 1,000 targets at a 2 s poll <= 40 % of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.controller_rig import SERIES, config, seed
from benchmarks.footprint import footprint
from benchmarks.push_reaction import push_reaction
from scaler.config import parse_config
from scaler.controller.app import serving
from tests.support.exporter import running_exporter
from tests.support.fake_kube import FakeKube
from tests.support.prometheus_server import prometheus_server, scrape_job, wait_for
from tests.support.proxy_stand_ins import stand_ins


def patches(kube: FakeKube, namespace: str) -> list[int]:
    return [
        r.body["spec"]["replicas"]
        for r in kube.calls("PATCH", f"/namespaces/{namespace}/deployments/ollama/scale$")
        if isinstance(r.body, dict)
    ]


async def wait(check: Any, timeout: float, poll: float = 0.005) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        await asyncio.sleep(poll)
    raise TimeoutError("no reaction")


async def reaction(trials: int, *, direct: bool) -> None:
    """Step the queue, time the PATCH. ``direct``: the controller reads the pods'
    proxies (stand-ins on 127.0.0.50+) with Prometheus as the fallback."""
    with tempfile.TemporaryDirectory() as tmp, running_exporter() as exporter:
        job = scrape_job("exporter", exporter.target)
        with prometheus_server(Path(tmp) / "p", scrape_configs=[job], scrape_interval=1.0) as p:
            wait_for(p, 'up{job="exporter"} == 1')
            async with FakeKube() as kube, stand_ins(2, first_ip=50) as (proxies, urls):
                port = int(urls[0].rsplit(":", 1)[1].split("/")[0])
                seed(kube, exporter, "bench", ips=[f"127.0.0.{50 + i}" for i in range(2)])
                data = config(p.url, ["bench"])
                if direct:
                    data["targets"][0]["metrics"][0]["direct"] = {"port": port, "series": SERIES}

                def step(value: float) -> None:
                    exporter.set_queue_depth("ollama-0", value, namespace="bench")
                    proxies[0].queue.set(value)

                settings = parse_config(data)
                kubeconfig = str(kube.write_kubeconfig(Path(tmp) / "kubeconfig"))
                async with serving(settings, kubeconfig=kubeconfig) as (service, _):
                    await wait(lambda: service.controller.ticks >= 3, 30)
                    times = []
                    phase = random.Random(7)
                    for _ in range(trials):
                        done = len(patches(kube, "bench"))
                        step(8)
                        stepped = time.monotonic()
                        seen = await wait(lambda n=done: len(patches(kube, "bench")) > n, 30)
                        times.append(seen - stepped)
                        step(0)
                        await wait(lambda n=done: len(patches(kube, "bench")) > n + 1, 30)
                        # Step at a random phase of the scrape and poll cycles.
                        await asyncio.sleep(phase.uniform(0.0, 1.0))
                    reads = service.metrics.metric_reads
                    direct_reads = reads.labels("bench", "ollama", "queue", "direct")._value.get()
    times.sort()
    p95 = times[max(0, int(0.95 * len(times) + 0.5) - 1)]
    path = f"direct from the proxies ({direct_reads:.0f} direct reads)" if direct else "Prometheus"
    print(
        f"reaction over {len(times)} steps via {path}: p50 {statistics.median(times):.2f} s, "
        f"p95 {p95:.2f} s, min {times[0]:.2f} s, max {times[-1]:.2f} s "
        "(step -> PATCH at the API; 1 s scrape, 1 s poll)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("reaction")
    r.add_argument("--trials", type=int, help="steps (20; with --push: 30 of each)")
    r.add_argument("--direct", action="store_true", help="read the proxies directly")
    r.add_argument("--push", action="store_true", help="a real router pushes its queue")
    f = sub.add_parser("footprint")
    f.add_argument("--targets", type=int, default=1)
    f.add_argument("--seconds", type=float, default=30.0)
    f.add_argument("--poll", type=float, default=1.0, help="the poll interval, seconds")
    args = parser.parse_args()
    if args.what == "reaction" and args.push:
        asyncio.run(push_reaction(30 if args.trials is None else args.trials))
    elif args.what == "reaction":
        asyncio.run(reaction(args.trials or 20, direct=args.direct))
    else:
        asyncio.run(footprint(args.targets, args.seconds, args.poll))


if __name__ == "__main__":
    main()
