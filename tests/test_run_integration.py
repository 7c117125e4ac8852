"""``scaler run`` end to end: a real Prometheus scraping a steerable exporter every
second, the real kubernetes-asyncio client talking HTTP to the fake API server, the
real HTTP endpoints. Waits here are bounded polls of real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from scaler.config import ScalerConfig, parse_config
from scaler.controller.app import serving
from tests.support.exporter import Exporter
from tests.support.fake_kube import FakeKube
from tests.support.loopback import no_env_proxy
from tests.support.prometheus_server import PrometheusServer
from tests.support.proxy_stand_ins import stand_ins
from tests.support.router_stand_ins import ROUTER_SERIES, router_stand_ins
from tests.support.waits import until

SCALE = r"/namespaces/{ns}/deployments/ollama/scale$"


def _config(prometheus: str, namespace: str, **top: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "prometheusUrl": prometheus,
        "pollInterval": 1,
        "metricsHost": "127.0.0.1",
        "metricsPort": 0,
        "leaderElection": {
            "namespace": namespace,
            "leaseDurationSeconds": 3,
            "retryPeriodSeconds": 0.5,
        },
        "targets": [
            {
                "namespace": namespace,
                "deployment": "ollama",
                "minReplicas": 2,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "name": "queue",
                        "type": "External",
                        "query": (
                            f'sum(last_over_time(ollama_proxy_queue_depth{{namespace="{namespace}"}}'
                            f"[10s])) + sum(last_over_time(ollama_proxy_requests_in_flight"
                            f'{{namespace="{namespace}"}}[10s]))'
                        ),
                        "target": {"type": "AverageValue", "averageValue": 1},
                    }
                ],
                "behavior": {
                    "scaleUp": {
                        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]
                    },
                    "scaleDown": {
                        "stabilizationWindowSeconds": 60,
                        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
                    },
                },
            }
        ],
    }
    data.update(top)
    return data


@pytest.fixture
async def kube(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeKube]:
    no_env_proxy(monkeypatch)
    async with FakeKube() as fake:
        yield fake


def _seed(kube: FakeKube, exporter: Exporter, namespace: str, replicas: int = 2) -> None:
    kube.add_deployment(namespace, "ollama", replicas=replicas)
    for i in range(replicas):
        kube.add_pod(namespace, f"ollama-{i}", labels={"app": "ollama"})
        exporter.set_queue_depth(f"ollama-{i}", 0, namespace=namespace)
        exporter.set_in_flight(f"ollama-{i}", 0, namespace=namespace)


def _patched(kube: FakeKube, namespace: str) -> list[int]:
    return [
        r.body["spec"]["replicas"]
        for r in kube.calls("PATCH", SCALE.format(ns=namespace))
        if isinstance(r.body, dict)
    ]


async def test_a_queue_step_in_the_exporter_becomes_a_patch_and_metrics(
    kube: FakeKube,
    exporter: Exporter,
    exporter_namespace: str,
    scraped_prometheus: PrometheusServer,
    tmp_path: Path,
) -> None:
    ns = exporter_namespace
    _seed(kube, exporter, ns)
    config = parse_config(_config(scraped_prometheus.url, ns))
    kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    async with (
        serving(config, kubeconfig=kubeconfig) as (service, port),
        aiohttp.ClientSession() as http,
    ):
        base = f"http://127.0.0.1:{port}"
        await until(lambda: service.controller.ticks >= 2, what="two ticks")
        async with http.get(f"{base}/readyz") as response:
            assert response.status == 200
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200
        assert _patched(kube, ns) == []
        exporter.set_queue_depth("ollama-0", 6, namespace=ns)
        exporter.set_in_flight("ollama-0", 1, namespace=ns)
        exporter.set_in_flight("ollama-1", 1, namespace=ns)
        # 8 in the system wants 8; +100 % of 2 allows 4.
        await until(lambda: _patched(kube, ns), what="a PATCH of the scale subresource")
        assert _patched(kube, ns)[0] == 4
        assert kube.get("deployments", ns, "ollama")["spec"]["replicas"] == 4
        await until(
            lambda: any(
                "New size: 4" in json.dumps(e.body) for e in kube.calls("POST", r"/events$")
            ),
            what="the SuccessfulRescale Event",
        )
        async with http.get(f"{base}/metrics") as response:
            text = await response.text()
        target = {"namespace": ns, "deployment": "ollama"}
        assert _value(text, "scaler_desired_replicas", **target) == 4
        assert _value(text, "scaler_decisions_total", **target, reason="ScaleUpLimit") >= 1
        assert _value(text, "scaler_leader") == 1
        assert _value(text, "scaler_poll_duration_seconds_count") >= 2
    lease = kube.get("leases", ns, "scaler")
    assert not lease["spec"].get("holderIdentity")  # released on shutdown


async def test_prometheus_down_holds_and_says_why(
    kube: FakeKube, exporter: Exporter, exporter_namespace: str, tmp_path: Path
) -> None:
    ns = exporter_namespace
    _seed(kube, exporter, ns, replicas=4)
    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    config = parse_config(_config(closed, ns, fallback={"replicas": 6, "failureThreshold": 3}))
    kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    async with (
        serving(config, kubeconfig=kubeconfig) as (service, port),
        aiohttp.ClientSession() as http,
    ):
        await until(lambda: _patched(kube, ns), what="the fallback patch")
        assert _patched(kube, ns) == [6]
        await until(lambda: service.controller.ticks >= 6, what="more ticks")
        assert _patched(kube, ns) == [6]  # steady: no flapping while Prometheus is down
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    target = {"namespace": ns, "deployment": "ollama"}
    errors = _value(text, "scaler_metric_errors_total", **target, metric="queue", kind="connection")
    assert errors >= 6
    assert _value(text, "scaler_decision_reason", **target, reason="Fallback") == 1


async def test_two_replicas_one_leader_and_a_fast_takeover(
    kube: FakeKube,
    exporter: Exporter,
    exporter_namespace: str,
    scraped_prometheus: PrometheusServer,
    tmp_path: Path,
) -> None:
    ns = exporter_namespace
    _seed(kube, exporter, ns)
    config = parse_config(_config(scraped_prometheus.url, ns))
    kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    async with serving(config, kubeconfig=kubeconfig) as (first, _):
        await until(lambda: first.metrics.leader._value.get() == 1, what="a leader")
        async with serving(config, kubeconfig=kubeconfig) as (second, _):
            await until(lambda: second.controller.ticks >= 3, what="ticks on the standby")
            assert second.metrics.leader._value.get() == 0
            exporter.set_queue_depth("ollama-0", 6, namespace=ns)
            exporter.set_in_flight("ollama-0", 2, namespace=ns)
            await until(lambda: _patched(kube, ns), what="the leader's patch")
            patches = kube.calls("PATCH", SCALE.format(ns=ns))
            assert len(patches) == 1
    # (the first left first, releasing; covered by the next test with a crash instead)


async def test_a_new_leader_takes_over_when_the_old_one_dies(
    kube: FakeKube,
    exporter: Exporter,
    exporter_namespace: str,
    scraped_prometheus: PrometheusServer,
    tmp_path: Path,
) -> None:
    ns = exporter_namespace
    _seed(kube, exporter, ns)
    data = _config(scraped_prometheus.url, ns)
    data["leaderElection"] = {"namespace": ns}  # the defaults: 10 s lease, 2 s retry
    config = parse_config(data)
    kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    leader = await _start_cli(tmp_path, config, kubeconfig)
    try:
        await until(lambda: _holder(kube, ns), timeout=20, what="the CLI to lead")
        async with serving(config, kubeconfig=kubeconfig) as (standby, _):
            await until(lambda: standby.controller.ticks >= 1, what="the standby's tick")
            leader.send_signal(signal.SIGKILL)  # dies without releasing
            await asyncio.to_thread(leader.wait)
            died = time.monotonic()
            await until(
                lambda: standby.metrics.leader._value.get() == 1, timeout=20, what="takeover"
            )
            assert time.monotonic() - died < 15.0
    finally:
        if leader.returncode is None:
            leader.kill()


async def test_sigterm_stops_cleanly_and_releases_the_lease(
    kube: FakeKube,
    exporter: Exporter,
    exporter_namespace: str,
    scraped_prometheus: PrometheusServer,
    tmp_path: Path,
) -> None:
    ns = exporter_namespace
    _seed(kube, exporter, ns)
    config = parse_config(_config(scraped_prometheus.url, ns))
    kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    process = await _start_cli(tmp_path, config, kubeconfig)
    log = tmp_path / "scaler.log"
    await until(lambda: _holder(kube, ns), timeout=20, what="the CLI to lead")
    await until(lambda: '"reason"' in log.read_text(), timeout=20, what="a decision")
    await kube.watch.wait_watches(3)  # its caches: deployments, pods, HPAs of the namespace
    process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(process.wait, 10)
    assert code == 0
    assert not _holder(kube, ns)
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line["message"] == "scaler run stopped" for line in lines)
    decisions = [line for line in lines if "reason" in line]
    assert decisions and {"target", "action", "replicas", "current", "metrics"} <= set(decisions[0])
    # No watch task left behind or ended on its own: each was cancelled and awaited.
    for leak in ("Task was destroyed", "never awaited", "ended unexpectedly", "Traceback"):
        assert leak not in text


async def test_polls_read_the_caches_a_change_wakes_and_the_watch_tasks_end_with_it(
    kube: FakeKube, exporter: Exporter, exporter_namespace: str, tmp_path: Path
) -> None:
    ns = exporter_namespace
    _seed(kube, exporter, ns)
    closed = "http://127.0.0.1:9"  # no Prometheus: every decision holds, which is enough
    config = parse_config(_config(closed, ns, pollInterval=60))
    kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    kinds = {"deployments", "pods", "horizontalpodautoscalers"}

    def reads() -> int:
        counts = kube.request_counts()
        return sum(n for (verb, kind), n in counts.items() if kind in kinds and verb != "watch")

    async with serving(config, kubeconfig=kubeconfig) as (service, _):
        watching = [t for t in asyncio.all_tasks() if t.get_name().startswith("watch-")]
        assert sorted(t.get_name() for t in watching) == [
            f"watch-{kind}-{ns}" for kind in ("deployments", "hpas", "pods")
        ]
        await until(lambda: service.controller.ticks >= 1, what="the first poll")
        await kube.watch.wait_watches(3)
        listed = reads()
        assert listed == 3  # one list of each kind, then only the watches
        kube.update("deployments", ns, "ollama", {"spec": {"replicas": 5}})  # kubectl scale
        # The next poll is a minute away: only the wake can decide this soon.
        await until(lambda: service.controller.ticks >= 2, what="a decision on the wake")
        assert reads() == listed
    assert all(task.done() for task in watching)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("watch-")]


def _value(text: str, name: str, **labels: str) -> float:
    """One sample of the exposition, by name and labels."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no sample {name}{labels}")


def _holder(kube: FakeKube, namespace: str) -> str | None:
    try:
        lease = kube.get("leases", namespace, "scaler")
    except KeyError:
        return None
    holder: str | None = lease["spec"].get("holderIdentity")
    return holder


async def _start_cli(tmp_path: Path, config: ScalerConfig, kubeconfig: str) -> Any:
    import subprocess

    path = tmp_path / "scaler.yaml"
    path.write_text(
        yaml.safe_dump(config.model_dump(by_alias=True, exclude_none=True, mode="json"))
    )
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with (tmp_path / "scaler.log").open("w") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scaler.cli",
                "run",
                "--config",
                str(path),
                "--kubeconfig",
                kubeconfig,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )


async def test_the_fast_path_reads_the_proxies_and_falls_back_to_prometheus(
    kube: FakeKube,
    exporter: Exporter,
    exporter_namespace: str,
    scraped_prometheus: PrometheusServer,
    tmp_path: Path,
) -> None:
    ns = exporter_namespace
    async with stand_ins(2, first_ip=40) as (proxies, urls):
        port = int(urls[0].rsplit(":", 1)[1].split("/")[0])
        kube.add_deployment(ns, "ollama", replicas=2)
        for i in range(2):
            kube.add_pod(ns, f"ollama-{i}", labels={"app": "ollama"}, ip=f"127.0.0.{40 + i}")
            exporter.set_queue_depth(f"ollama-{i}", 0, namespace=ns)
            exporter.set_in_flight(f"ollama-{i}", 0, namespace=ns)
        data = _config(scraped_prometheus.url, ns)
        data["targets"][0]["metrics"][0]["direct"] = {
            "port": port,
            "series": ["ollama_proxy_queue_depth", "ollama_proxy_requests_in_flight"],
        }

        def steer() -> None:  # Prometheus never sees this: only the proxies know
            proxies[0].queue.set(7)
            proxies[1].in_flight.set(1)

        def fail() -> None:
            proxies[1].status = 503

        await _direct_then_prometheus(kube, ns, parse_config(data), tmp_path, steer, fail)


async def test_the_fast_path_reads_the_routers_behind_a_name(
    kube: FakeKube,
    exporter: Exporter,
    exporter_namespace: str,
    scraped_prometheus: PrometheusServer,
    tmp_path: Path,
) -> None:
    """The real wiring: the system resolver finds the router behind ``localhost``."""
    ns = exporter_namespace
    async with router_stand_ins(1) as ((router,), _, port):
        _seed(kube, exporter, ns)  # pods without IPs: the routers need none
        data = _config(scraped_prometheus.url, ns)
        data["targets"][0]["metrics"][0]["direct"] = {
            "host": "localhost",
            "port": port,
            "series": list(ROUTER_SERIES),
        }

        def steer() -> None:  # Prometheus never sees this: only the router knows
            router.queue.set(6)
            router.in_flight.set(2)

        def fail() -> None:
            router.server.status = 503

        await _direct_then_prometheus(kube, ns, parse_config(data), tmp_path, steer, fail)


async def _direct_then_prometheus(
    kube: FakeKube,
    ns: str,
    config: ScalerConfig,
    tmp_path: Path,
    steer: Callable[[], None],
    fail: Callable[[], None],
) -> None:
    """Direct reads serve the polls; ``steer`` puts 8 in the system, which only the
    direct path sees, and scaler patches 4 (+100 % of 2); after ``fail`` the polls
    fall back to Prometheus."""
    kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    async with serving(config, kubeconfig=kubeconfig) as (service, _):
        reads = service.metrics.metric_reads
        await until(
            lambda: reads.labels(ns, "ollama", "queue", "direct")._value.get() >= 2,
            what="direct reads",
        )
        steer()
        await until(lambda: _patched(kube, ns), what="a patch from the direct reading")
        assert _patched(kube, ns)[0] == 4
        fail()
        before = reads.labels(ns, "ollama", "queue", "prometheus")._value.get()
        await until(
            lambda: reads.labels(ns, "ollama", "queue", "prometheus")._value.get() > before,
            what="the Prometheus fallback",
        )
