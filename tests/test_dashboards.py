"""The Grafana dashboards: a sane JSON model, and every PromQL expression in them (and in
scaler's default config) parses and returns data from a real Prometheus that scrapes,
during the test, a real ``scaler proxy`` pair in front of the fake Ollama, a real
``scaler run`` in shadow mode against the fake Kubernetes API, and a cAdvisor stand-in.

Needs the ``prometheus`` binary (tests/prometheus_server.py); never skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import ollama
import pytest
import yaml

from scaler.config import parse_config
from scaler.controller.app import serving
from scaler.proxy.app import build_app
from scaler.proxy.settings import ProxySettings
from tests.exporter import Exporter, running_exporter
from tests.fake_kube import FakeKube
from tests.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.prometheus_server import PrometheusServer, prometheus_server, scrape_job, wait_for
from tests.threaded_server import serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
DEFAULT_CONFIG = ROOT / "scaler" / "default_config.yaml"
NAMESPACE = "chatbot"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What Grafana would put in for its variables, here: one namespace, one Deployment.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$namespace": NAMESPACE,
    "$deployment": "ollama",
}
POD_IPS = ("127.0.0.1", "127.0.0.2")
"""One proxy per pod, both on the same port, as in a cluster (the direct path's port)."""
QUERY_DEADLINE = 40.0
"""Seconds, after the first scrapes, for every expression to return data."""
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def _grafana_to_promql(expr: str) -> str:
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(name, value)
    leftover = re.search(r"\$\{?\w+", expr)
    assert leftover is None, f"unknown Grafana variable {leftover.group()} in {expr!r}"
    return expr


def _variable_promql(query: str) -> str:
    """``label_values(METRIC, LABEL)`` (Grafana's, not PromQL) as a PromQL query that
    returns data exactly when the variable has values."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
    assert match, f"unsupported variable query {query!r}"
    return f"count by ({match[2]}) ({match[1]})"


def _expressions() -> dict[str, str]:
    """Every expression to prove, keyed by where it comes from."""
    found: dict[str, str] = {}
    for path in DASHBOARDS:
        dashboard = _load(path)
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                key = f"{path.name}: {panel['title']} [{target['refId']}]"
                found[key] = _grafana_to_promql(target["expr"])
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]
                text = query["query"] if isinstance(query, dict) else query
                key = f"{path.name}: variable {variable['name']}"
                found[key] = _variable_promql(_grafana_to_promql(text))
    config = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    for target in config["targets"]:
        for metric in target["metrics"]:
            found[f"default_config.yaml: {target['deployment']} {metric['name']}"] = metric["query"]
    return found


# --- the JSON model ----------------------------------------------------------------


def test_there_are_dashboards_for_scaler_and_ollama() -> None:
    assert {p.name for p in DASHBOARDS} >= {"scaler.json", "ollama.json"}
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_the_dashboard_model_is_sane(path: Path) -> None:
    dashboard = _load(path)
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["refresh"] == "5s"
    assert dashboard["time"]["from"].startswith("now-") and dashboard["time"]["to"] == "now"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == "prometheus"  # the provisioned uid
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE
    panels = list(_panels(dashboard))
    assert panels
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = [p["title"] for p in panels]
    assert len(titles) == len(set(titles)), "panel titles must be unique"
    for panel in panels:
        where = f"{path.name}: {panel['title']}"
        assert panel["datasource"] == DATASOURCE, where
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        assert len(panel.get("description", "")) > 20, f"{where}: no description"
        assert panel["targets"], f"{where}: no queries"
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, where
            assert "${datasource}" not in target["expr"], where
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["y"] >= 0, where
        assert grid["x"] + grid["w"] <= 24, f"{where}: wider than the grid"
    for i, a in enumerate(panels):
        for b in panels[i + 1 :]:
            assert not _overlap(a["gridPos"], b["gridPos"]), (
                f"{path.name}: {a['title']!r} overlaps {b['title']!r}"
            )


def _overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_grafana_variables_become_promql() -> None:
    assert _grafana_to_promql('rate(x{namespace=~"$namespace"}[$__rate_interval])') == (
        'rate(x{namespace=~"chatbot"}[1m])'
    )
    assert _variable_promql('label_values(up{job=~"a"}, pod)') == 'count by (pod) (up{job=~"a"})'


# --- every expression against a real Prometheus --------------------------------------


def _query(prom: PrometheusServer, promql: str) -> tuple[int, dict[str, Any]]:
    url = f"{prom.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with _OPENER.open(url, timeout=5.0) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _unanswered(
    prom: PrometheusServer, expressions: dict[str, str], deadline: float
) -> dict[str, str]:
    """Poll every expression until it returns a series or ``deadline`` passes; returns the
    ones that never did. One that does not parse fails at once."""
    pending = dict(expressions)
    while pending:
        for key, promql in list(pending.items()):
            status, body = _query(prom, promql)
            assert status == 200, f"{key}: {promql!r} -> {status} {body.get('error')}"
            if body["data"]["result"]:
                del pending[key]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return pending


class _Traffic:
    """Chat requests through both proxies, one after another, and CPU time in the
    cAdvisor stand-in, from a background thread until ``stop()``."""

    def __init__(self, urls: list[str], exporter: Exporter) -> None:
        self.urls = urls
        self.exporter = exporter
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-traffic", daemon=True)

    def __enter__(self) -> _Traffic:
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
            for i, client in enumerate(clients):
                self.exporter.add_cpu_seconds(f"ollama-{i}", 0.2, namespace=NAMESPACE)
                try:
                    client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
                except ollama.ResponseError as error:
                    if error.status_code != 503:  # a full queue is expected now and then
                        self.errors.append(error)
                except Exception as error:  # reported by the test
                    self.errors.append(error)
            self._stop.wait(0.1)


def _burst(url: str, n: int) -> list[int]:
    """``n`` chats at once to one proxy: 200s and the 503s of a full queue."""

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


def _scrape_configs(proxy_port: int, exporter: Exporter, scaler_targets: Path) -> list[dict]:
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
    scaler = {
        "job_name": "scaler",
        "honor_labels": True,  # as the in-cluster job: scaler's namespace labels win
        "file_sd_configs": [{"files": [str(scaler_targets)]}],
    }
    # cAdvisor's series carry namespace/pod/container themselves.
    return [proxies, scaler, scrape_job("kubelet-cadvisor", exporter.target)]


def _scaler_config(prometheus: str, proxy_port: int) -> dict[str, Any]:
    """The default config, in shadow mode, polling every second, against this test's
    Prometheus, reading the proxies directly on their port."""
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
    data["targets"][0]["metrics"][0]["direct"]["port"] = proxy_port
    return data


async def test_every_expression_returns_data_from_the_running_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    expressions = _expressions()
    with ExitStack() as stack:
        fake = stack.enter_context(running_fake_ollama(prefill=0.3, load_delay=0.2))
        urls, proxy_port = _start_proxies(stack, fake)
        exporter = stack.enter_context(running_exporter())
        scaler_targets = tmp_path / "scaler-targets.json"
        _write_targets(scaler_targets, [])
        prom = stack.enter_context(
            prometheus_server(
                tmp_path / "prometheus",
                scrape_configs=_scrape_configs(proxy_port, exporter, scaler_targets),
                scrape_interval=1.0,
            )
        )
        config = parse_config(_scaler_config(prom.url, proxy_port))
        async with FakeKube() as kube:
            kube.add_deployment(NAMESPACE, "ollama", replicas=2)
            for i, ip in enumerate(POD_IPS):
                kube.add_pod(NAMESPACE, f"ollama-{i}", labels={"app": "ollama"}, ip=ip)
            kube.add_hpa(NAMESPACE, "ollama", target_name="ollama")  # shadow beside an HPA
            kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
            async with serving(config, kubeconfig=kubeconfig) as (_, scaler_port):
                _write_targets(
                    scaler_targets,
                    [
                        {
                            "targets": [f"127.0.0.1:{scaler_port}"],
                            "labels": {"namespace": NAMESPACE, "pod": "scaler-0"},
                        }
                    ],
                )
                with _Traffic(urls, exporter) as traffic:
                    for up in (
                        'count(up{job="ollama-proxies"} == 1) == 2',
                        'up{job="kubelet-cadvisor"} == 1',
                        'up{job="scaler"} == 1',
                    ):
                        await asyncio.to_thread(wait_for, prom, up)
                    fake.unload_all()  # a model load after the first scrape: loads show
                    codes = await asyncio.to_thread(_burst, urls[0], 4)
                    assert 503 in codes, codes  # parallel 1 + queue 1: the rest is refused
                    deadline = time.monotonic() + QUERY_DEADLINE
                    empty = await asyncio.to_thread(_unanswered, prom, expressions, deadline)
                assert not traffic.errors, traffic.errors
    assert not empty, "returned no data with everything running:\n" + "\n".join(
        f"  {key}: {promql}" for key, promql in empty.items()
    )
