"""``scaler run``: reaction time and footprint, with real parts.

Run:
  .venv/bin/python -m benchmarks.bench_controller reaction [--trials 20] [--direct]
  .venv/bin/python -m benchmarks.bench_controller reaction --push [--trials 30]
  .venv/bin/python -m benchmarks.bench_controller footprint [--targets 1] [--seconds 30]

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
  each) at a 1 s poll for ``--seconds``; its CPU time (utime + stime from /proc) over
  the wall time, and its peak resident memory. Goals: RSS <= 100 MiB; <= 2 % of a
  core with one target, <= 15 % with 100.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.push_reaction import push_reaction
from scaler.config import parse_config
from scaler.controller.app import serving
from tests.support.exporter import Exporter, running_exporter
from tests.support.fake_kube import FakeKube
from tests.support.prometheus_server import prometheus_server, scrape_job, wait_for
from tests.support.proxy_stand_ins import stand_ins

SERIES = ["ollama_proxy_queue_depth", "ollama_proxy_requests_in_flight"]

INSTANT = {
    "scaleUp": {"policies": [{"type": "Pods", "value": 100, "periodSeconds": 1}]},
    "scaleDown": {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
    },
}


def config(prometheus: str, namespaces: list[str], **top: Any) -> dict[str, Any]:
    return {
        "prometheusUrl": prometheus,
        "pollInterval": 1,
        "metricsHost": "127.0.0.1",
        "metricsPort": 0,
        "leaderElection": {"namespace": namespaces[0]},
        "targets": [
            {
                "namespace": ns,
                "deployment": "ollama",
                "minReplicas": 2,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "name": "queue",
                        "query": f'sum(ollama_proxy_queue_depth{{namespace="{ns}"}})',
                        "target": {"type": "AverageValue", "averageValue": 1},
                    },
                    {
                        "name": "cpu",
                        "type": "Resource",
                        "query": (
                            "sum by (pod) (rate(container_cpu_usage_seconds_total"
                            f'{{namespace="{ns}"}}[5s]))'
                        ),
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                ],
                "behavior": INSTANT,
            }
            for ns in namespaces
        ],
        **top,
    }


def seed(
    kube: FakeKube, exporter: Exporter, namespace: str, *, ips: list[str] | None = None
) -> None:
    kube.add_deployment(namespace, "ollama", replicas=2)
    for i in range(2):
        ip = ips[i] if ips else None
        kube.add_pod(namespace, f"ollama-{i}", labels={"app": "ollama"}, ip=ip)
        exporter.set_queue_depth(f"ollama-{i}", 0, namespace=namespace)
        exporter.set_cpu_seconds(f"ollama-{i}", 0.0, namespace=namespace, container="ollama")


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


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def footprint(targets: int, seconds: float) -> None:
    namespaces = [f"bench-{i}" for i in range(targets)]
    with tempfile.TemporaryDirectory() as tmp, running_exporter() as exporter:
        job = scrape_job("exporter", exporter.target)
        with prometheus_server(Path(tmp) / "p", scrape_configs=[job], scrape_interval=1.0) as p:
            async with FakeKube() as kube:
                for ns in namespaces:
                    seed(kube, exporter, ns)
                wait_for(p, 'up{job="exporter"} == 1')
                path = Path(tmp) / "scaler.yaml"
                path.write_text(yaml.safe_dump(config(p.url, namespaces)))
                kubeconfig = str(kube.write_kubeconfig(Path(tmp) / "kubeconfig"))
                env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
                child = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "scaler.cli", "run", "--config", str(path),
                    "--kubeconfig", kubeconfig, "--log-level", "warning",
                    env=env, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                await asyncio.sleep(5)  # start-up and the first polls
                cpu0, wall0, peak = proc_cpu_seconds(child.pid), time.monotonic(), 0.0
                while time.monotonic() - wall0 < seconds:
                    await asyncio.sleep(0.5)
                    peak = max(peak, proc_rss_mib(child.pid))
                used = proc_cpu_seconds(child.pid) - cpu0
                wall = time.monotonic() - wall0
                polls = len(kube.calls("GET", r"/deployments/ollama$"))
                child.terminate()
                code = await child.wait()
    print(
        f"footprint with {targets} target(s) at a 1 s poll over {wall:.0f} s: "
        f"{100 * used / wall:.1f} % of a core, peak RSS {peak:.0f} MiB, "
        f"{polls} Deployment reads, exit code {code}"
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
    args = parser.parse_args()
    if args.what == "reaction" and args.push:
        asyncio.run(push_reaction(30 if args.trials is None else args.trials))
    elif args.what == "reaction":
        asyncio.run(reaction(args.trials or 20, direct=args.direct))
    else:
        asyncio.run(footprint(args.targets, args.seconds))


if __name__ == "__main__":
    main()
