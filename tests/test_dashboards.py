"""The Grafana dashboards: a sane JSON model, and every PromQL expression in them (and in
scaler's default config) parses and returns data from a real Prometheus that scrapes,
during the test, a real ``scaler router`` process in front of a real ``scaler proxy``
pair in front of the fake Ollama, a real ``scaler run`` in shadow mode against the fake
Kubernetes API (reading the router directly), and a cAdvisor stand-in.

Needs the ``prometheus`` binary (tests/support/prometheus_server.py); never skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.dashboard_stack import (
    DEFAULT_CONFIG,
    NAMESPACE,
    ROOT,
    Traffic,
    burst,
    running_stack,
)
from tests.support.loopback import no_env_proxy
from tests.support.prometheus_server import PrometheusServer

DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What Grafana would put in for its variables, here: one namespace, one Deployment.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$namespace": NAMESPACE,
    "$deployment": "ollama",
}
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


def test_the_ollama_dashboard_shows_what_the_router_measures() -> None:
    """Issue 11's list: queue depth, in flight per pod, time in queue, time to first
    byte, rejects, re-dispatches, known pods by state."""
    dashboard = _load(ROOT / "dashboards" / "ollama.json")
    exprs = " ".join(t["expr"] for p in _panels(dashboard) for t in p["targets"])
    for series in (
        "scaler_router_queue_depth",
        "scaler_router_pod_requests_in_flight",
        "scaler_router_queue_wait_seconds_bucket",
        "scaler_router_time_to_first_byte_seconds_bucket",
        "scaler_router_rejected_total",
        "scaler_router_redispatches_total",
        "scaler_router_pods",
    ):
        assert re.search(rf"\b{series}\b", exprs), series


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


async def test_every_expression_returns_data_from_the_running_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_env_proxy(monkeypatch)
    expressions = _expressions()
    async with running_stack(tmp_path) as stack:
        with Traffic([*stack.proxies, stack.router], stack.exporter) as traffic:
            await stack.scraped()
            stack.fake.unload_all()  # a model load after the first scrape: loads show
            codes = await asyncio.to_thread(burst, stack.proxies[0], 4)
            assert 503 in codes, codes  # parallel 1 + queue 1: the rest is refused
            # Two pods' slots and a shared queue of 1: the router refuses the rest.
            codes = await asyncio.to_thread(burst, stack.router, 6)
            assert 503 in codes, codes
            deadline = time.monotonic() + QUERY_DEADLINE
            empty = await asyncio.to_thread(_unanswered, stack.prometheus, expressions, deadline)
        assert not traffic.errors, traffic.errors
        # The queue came straight from the routers (pushed, or read at a poll before the
        # stream was up), not only through Prometheus.
        reads = stack.scaler.metrics.metric_reads
        straight = sum(
            reads.labels(NAMESPACE, "ollama", "queue", path)._value.get()
            for path in ("push", "direct")
        )
        assert straight > 0
    assert not empty, "returned no data with everything running:\n" + "\n".join(
        f"  {key}: {promql}" for key, promql in empty.items()
    )
