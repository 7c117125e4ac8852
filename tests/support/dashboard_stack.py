"""The stack the dashboards are checked against, all real processes on loopback: the
fake Ollama; two ``scaler proxy`` pods in front of it on 127.0.0.1 and 127.0.0.2 (one
port, as pods); a ``scaler router`` process in front of both; a cAdvisor stand-in; a
real Prometheus scraping them as manifests/base/config/prometheus.yml does; and
``scaler run`` in shadow mode against the fake Kubernetes API, reading the router
directly. ``Traffic`` keeps requests flowing through all of it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ollama
import yaml

from scaler.config import parse_config
from scaler.controller.app import serving
from scaler.controller.service import Service
from scaler.proxy.app import build_app
from scaler.proxy.settings import ProxySettings
from tests.support.exporter import Exporter, running_exporter
from tests.support.fake_kube import FakeKube
from tests.support.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.support.prometheus_server import (
    PrometheusServer,
    prometheus_server,
    scrape_job,
    wait_for,
)
from tests.support.router_process import running_router
from tests.support.threaded_server import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "scaler" / "default_config.yaml"
NAMESPACE = "chatbot"
POD_IPS = ("127.0.0.1", "127.0.0.2")
"""One proxy per pod, both on the same port, as in a cluster."""
JOBS_UP = (
    'count(up{job="ollama-proxies"} == 1) == 2',
    'up{job="scaler-router"} == 1',
    'up{job="kubelet-cadvisor"} == 1',
    'up{job="scaler"} == 1',
)


@dataclass
class Stack:
    fake: RunningFakeOllama
    proxies: list[str]
    router: str
    exporter: Exporter
    prometheus: PrometheusServer
    scaler: Service

    async def scraped(self) -> None:
        """Until Prometheus has scraped every job once."""
        for up in JOBS_UP:
            await asyncio.to_thread(wait_for, self.prometheus, up)


@asynccontextmanager
async def running_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    with ExitStack() as stack:
        fake = stack.enter_context(running_fake_ollama(prefill=0.3, load_delay=0.2))
        urls, proxy_port = _start_proxies(stack, fake)
        router = stack.enter_context(
            running_router(urls, log=tmp_path / "router.log", parallel=1, max_queue=1)
        )
        exporter = stack.enter_context(running_exporter())
        scaler_targets = tmp_path / "scaler-targets.json"
        _write_targets(scaler_targets, [])
        prom = stack.enter_context(
            prometheus_server(
                tmp_path / "prometheus",
                scrape_configs=_scrape_configs(proxy_port, router, exporter, scaler_targets),
                scrape_interval=1.0,
            )
        )
        config = parse_config(_scaler_config(prom.url, router))
        async with FakeKube() as kube:
            kube.add_deployment(NAMESPACE, "ollama", replicas=2)
            for i, ip in enumerate(POD_IPS):
                kube.add_pod(NAMESPACE, f"ollama-{i}", labels={"app": "ollama"}, ip=ip)
            kube.add_hpa(NAMESPACE, "ollama", target_name="ollama")  # shadow beside an HPA
            kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
            async with serving(config, kubeconfig=kubeconfig) as (service, scaler_port):
                scaler = {"namespace": NAMESPACE, "pod": "scaler-0"}
                _write_targets(
                    scaler_targets, [{"targets": [f"127.0.0.1:{scaler_port}"], "labels": scaler}]
                )
                yield Stack(fake, urls, router, exporter, prom, service)


class Traffic:
    """Chat requests through both proxies and the router, one after another, and CPU
    time in the cAdvisor stand-in for each pod, from a background thread until
    ``stop()``."""

    def __init__(self, urls: list[str], exporter: Exporter) -> None:
        self.urls = urls
        self.exporter = exporter
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with ExitStack() as stack:
            clients = [stack.enter_context(ollama.Client(host=url)) for url in self.urls]
            self._loop(clients)

    def _loop(self, clients: list[ollama.Client]) -> None:
        while not self._stop.is_set():
            for i in range(len(POD_IPS)):
                self.exporter.add_cpu_seconds(f"ollama-{i}", 0.2, namespace=NAMESPACE)
            for client in clients:
                try:
                    client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
                except ollama.ResponseError as error:
                    if error.status_code != 503:  # a full queue is expected now and then
                        self.errors.append(error)
                except Exception as error:  # reported by the test
                    self.errors.append(error)
            self._stop.wait(0.1)


def burst(url: str, n: int) -> list[int]:
    """``n`` chats at once to one proxy or the router: 200s and the 503s of a full queue."""

    def one(_: int) -> int:
        try:
            with ollama.Client(host=url) as client:
                client.chat(model="llama3.2", messages=[{"role": "user", "content": "x"}])
        except ollama.ResponseError as error:
            return error.status_code
        return 200

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def _write_targets(path: Path, groups: list[dict[str, Any]]) -> None:
    """A file_sd file, replaced atomically so Prometheus never reads half of it."""
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(groups), encoding="utf-8")
    partial.replace(path)


def _start_proxies(stack: ExitStack, fake: RunningFakeOllama) -> tuple[list[str], int]:
    urls: list[str] = []
    port = 0
    for host in POD_IPS:
        app = build_app(ProxySettings(upstream=fake.url, parallel=1, max_queue=1))
        url = stack.enter_context(
            serve_in_thread(app, host=host, port=port, handler_cancellation=True)
        )
        port = int(url.rsplit(":", 1)[1])
        urls.append(url)
    return urls, port


def _scrape_configs(
    proxy_port: int, router: str, exporter: Exporter, scaler_targets: Path
) -> list[dict[str, Any]]:
    """The jobs of manifests/base/config/prometheus.yml, with static targets carrying the
    labels its relabelling gives pods (``namespace``, ``pod``, ``app``)."""
    proxies = {
        "job_name": "ollama-proxies",
        "static_configs": [
            {
                "targets": [f"{ip}:{proxy_port}"],
                "labels": {"namespace": NAMESPACE, "pod": f"ollama-{i}", "app": "ollama"},
            }
            for i, ip in enumerate(POD_IPS)
        ],
    }
    routers = {
        "job_name": "scaler-router",
        "honor_labels": True,  # as the in-cluster job: the per-pod series keep their pod
        "static_configs": [
            {
                "targets": [router.removeprefix("http://")],
                "labels": {
                    "namespace": NAMESPACE,
                    "pod": "scaler-router-0",
                    "app": "scaler-router",
                },
            }
        ],
    }
    scaler = {
        "job_name": "scaler",
        "honor_labels": True,  # as the in-cluster job: scaler's namespace labels win
        "file_sd_configs": [{"files": [str(scaler_targets)]}],
    }
    # cAdvisor's series carry namespace/pod/container themselves.
    return [proxies, routers, scaler, scrape_job("kubelet-cadvisor", exporter.target)]


def _scaler_config(prometheus: str, router: str) -> dict[str, Any]:
    """The default config, in shadow mode, polling every second, against this test's
    Prometheus, reading the router directly: ``localhost`` stands for the headless
    Service's name, resolved by the system resolver as in a pod."""
    data: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data.update(
        prometheusUrl=prometheus,
        pollInterval=1,
        mode="shadow",
        metricsHost="127.0.0.1",
        metricsPort=0,
        leaderElection={
            "namespace": NAMESPACE,
            "leaseDurationSeconds": 3,
            "retryPeriodSeconds": 0.5,
        },
    )
    host, port = router.removeprefix("http://").rsplit(":", 1)
    assert host == "127.0.0.1"
    data["targets"][0]["metrics"][0]["direct"].update(host="localhost", port=int(port))
    return data
