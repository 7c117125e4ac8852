"""``reaction --push``: a queue step at a real router, to the PATCH at the fake API.

Real processes on loopback: a fake Ollama pod (one slot, endless answers), ``scaler
router`` in front of it, ``scaler run`` (restarted every ``RESTART_EVERY`` trials, so
some steps meet a controller that has just subscribed), and the fake Kubernetes API
over HTTP in this process. A step is ``STEP`` chats sent at once: one answers, the
rest queue at the router; the controller sees 8 on 2 pods and scales to 8 (the policy
lets it scale at once, and back down at once when the chats are cancelled).

The same run times the poll: the controller with ``direct.push: false`` reads the
router's /metrics every second (the direct read, no Prometheus). Goal (issue 15):
push p95 <= 0.2 s over 30 trials.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from benchmarks.processes import HOST, free_port, start_fake, start_listener, start_router, stop
from tests.support.fake_kube import FakeKube

NAMESPACE = "bench"
STEP = 8
RESTART_EVERY = 10
SERIES = ["scaler_router_queue_depth", "scaler_router_requests_in_flight"]
INSTANT = {
    "scaleUp": {"policies": [{"type": "Pods", "value": 100, "periodSeconds": 1}]},
    "scaleDown": {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
    },
}


def _config(router_port: int, metrics_port: int, *, push: bool) -> dict[str, Any]:
    queue = {
        "name": "queue",
        "query": "sum(scaler_router_queue_depth)",  # no Prometheus here: never answers
        "direct": {"host": HOST, "port": router_port, "series": SERIES, "push": push},
        "target": {"type": "AverageValue", "averageValue": 1},
    }
    target = {"namespace": NAMESPACE, "deployment": "ollama", "minReplicas": 2}
    return {
        "prometheusUrl": f"http://{HOST}:9",
        "pollInterval": 1,
        "metricsHost": HOST,
        "metricsPort": metrics_port,
        "leaderElection": {"enabled": False},
        "targets": [{**target, "maxReplicas": 10, "metrics": [queue], "behavior": INSTANT}],
    }


class Bench:
    """The router, the fake API and the controller of one mode."""

    def __init__(self, kube: FakeKube, session: aiohttp.ClientSession, router: str, tmp: Path):
        self.kube, self.session, self.router, self.tmp = kube, session, router, tmp
        self.controller: subprocess.Popen[Any] | None = None
        self.metrics = ""

    def patches(self) -> int:
        return len(self.kube.calls("PATCH", f"/namespaces/{NAMESPACE}/deployments/ollama/scale$"))

    async def start_controller(self, *, push: bool) -> None:
        self.stop_controller()
        port = free_port()
        router_port = int(self.router.rsplit(":", 1)[1])
        path = self.tmp / "scaler.yaml"
        path.write_text(yaml.safe_dump(_config(router_port, port, push=push)))
        kubeconfig = str(self.kube.write_kubeconfig(self.tmp / "kubeconfig"))
        argv = [sys.executable, "-m", "scaler.cli", "run", "--config", str(path)]
        argv += ["--kubeconfig", kubeconfig, "--log-level", "warning"]
        # start_listener blocks; the fake API must answer meanwhile: another thread
        self.controller, self.metrics = await asyncio.to_thread(
            start_listener, argv, port, "controller"
        )
        await _wait(lambda: self._ready(push), 30)

    async def _ready(self, push: bool) -> bool:
        """Polled once, and (pushing) its stream live: a fresh controller's first step."""
        async with self.session.get(f"{self.metrics}/metrics") as response:
            text = await response.text()
        values = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(("scaler_decisions_by_trigger_total{", "scaler_push_streams{"))
        }
        polled = any(v >= 1 for k, v in values.items() if 'trigger="poll"' in k)
        live = any(v == 1 for k, v in values.items() if k.startswith("scaler_push_streams{"))
        return polled and (live or not push)

    def stop_controller(self) -> None:
        if self.controller is not None:
            stop(self.controller)
            self.controller = None

    async def trial(self, phase: random.Random) -> float:
        before = self.patches()
        stepped = time.monotonic()
        load = [asyncio.create_task(self._chat()) for _ in range(STEP)]
        seen = await _wait(lambda: self.patches() > before, 30)
        for task in load:
            task.cancel()
        await asyncio.gather(*load, return_exceptions=True)
        await _wait(lambda: self.patches() > before + 1, 30)  # back to 2
        await asyncio.sleep(phase.uniform(0.0, 1.0))  # a random phase of the poll
        return seen - stepped

    async def _chat(self) -> None:
        chat = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
        async with self.session.post(f"{self.router}/api/chat", json=chat) as response:
            async for _ in response.content.iter_any():
                pass


async def _wait(check: Any, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic()
        await asyncio.sleep(0.002)
    raise TimeoutError("no reaction")


async def _mode(bench: Bench, trials: int, *, push: bool) -> list[float]:
    phase, times = random.Random(7), []
    for trial in range(trials):
        if trial % RESTART_EVERY == 0:
            await bench.start_controller(push=push)
        times.append(await bench.trial(phase))
    bench.stop_controller()
    return sorted(times)


def _figures(times: list[float]) -> str:
    p95 = times[max(0, int(0.95 * len(times) + 0.5) - 1)]
    return (
        f"p50 {statistics.median(times):.3f} s, p95 {p95:.3f} s, "
        f"min {times[0]:.3f} s, max {times[-1]:.3f} s"
    )


async def push_reaction(trials: int) -> None:
    fake, fake_url = start_fake({"slots": 1, "tokens": 10**6, "tokens_per_second": 20})
    router, router_url = start_router(fake_url, parallel=1, max_queue=64, log_level="warning")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with FakeKube() as kube, aiohttp.ClientSession() as session:
                kube.add_deployment(NAMESPACE, "ollama", replicas=2)
                for i in range(2):
                    kube.add_pod(NAMESPACE, f"ollama-{i}", labels={"app": "ollama"})
                bench = Bench(kube, session, router_url, Path(tmp))
                try:
                    pushed = await _mode(bench, trials, push=True)
                    polled = await _mode(bench, trials, push=False)
                finally:
                    bench.stop_controller()
    finally:
        stop(router)
        stop(fake)
    print(
        f"reaction over {trials} steps of {STEP} chats at a real router, step -> PATCH at the "
        f"API, the controller restarted every {RESTART_EVERY} steps:\n"
        f"  push (the router's queue stream): {_figures(pushed)}\n"
        f"  poll (the router's /metrics each 1 s poll): {_figures(polled)}"
    )
