"""``minReplicas: 0`` with ``scaleToZero``: accepted only for a router metric."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaler.cli import main
from scaler.config import DEFAULT_CONFIG_PATH, load, parse_config
from scaler.errors import ConfigError
from scaler.policy import ZeroRule

ROUTERS = {
    "host": "scaler-router-headless.chatbot.svc.cluster.local",
    "port": 11434,
    "series": ["scaler_router_queue_depth", "scaler_router_requests_in_flight"],
}
TARGET: dict[str, Any] = {
    "namespace": "chatbot",
    "deployment": "ollama",
    "minReplicas": 0,
    "maxReplicas": 10,
    "scaleToZero": {"metric": "queue", "idleSeconds": 600},
    "metrics": [
        {
            "name": "queue",
            "query": "sum(q)",
            "direct": ROUTERS,
            "target": {"type": "AverageValue", "averageValue": 1},
        },
        {
            "name": "cpu",
            "type": "Resource",
            "query": "sum by (pod) (rate(c[30s]))",
            "target": {"type": "Utilization", "averageUtilization": 80},
        },
    ],
}


def _config(**changes: Any) -> dict[str, Any]:
    target = copy.deepcopy(TARGET)
    for key, value in changes.items():
        if value is None:
            del target[key]
        else:
            target[key] = value
    return {"targets": [target]}


def _problem(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert len(caught.value.problems) == 1
    return caught.value.problems[0]


def test_min_zero_with_a_router_metric_gives_the_engine_one_and_the_rule_zero() -> None:
    config = parse_config(_config())
    target = config.targets[0]
    assert target.to_policy().min_replicas == 1  # the HPA's math never sees 0
    assert config.step_spec(target).zero == ZeroRule("queue", 600.0)


def test_idle_seconds_defaults_to_five_minutes() -> None:
    config = parse_config(_config(scaleToZero={"metric": "queue"}))
    assert config.step_spec(config.targets[0]).zero == ZeroRule("queue", 300.0)


def test_the_default_config_stays_two_to_ten_without_zero() -> None:
    config = load(DEFAULT_CONFIG_PATH)
    target = config.targets[0]
    assert (target.min_replicas, target.max_replicas) == (2, 10)
    assert config.step_spec(target).zero is None


def test_min_zero_without_scale_to_zero_is_refused() -> None:
    problem = _problem(_config(scaleToZero=None))
    assert "minReplicas 0 needs a scaleToZero block" in problem


def test_scale_to_zero_with_a_minimum_above_zero_is_refused() -> None:
    problem = _problem(_config(minReplicas=2))
    assert "scaleToZero is only for minReplicas 0, not 2" in problem


def test_an_unknown_metric_is_named() -> None:
    problem = _problem(_config(scaleToZero={"metric": "queu"}))
    assert "scaleToZero metric 'queu' is not a metric of this target (queue, cpu)" in problem


def test_the_metric_name_is_bounded_as_a_metric_name() -> None:
    assert "scaleToZero.metric" in _problem(_config(scaleToZero={"metric": "q" * 64}))


@pytest.mark.parametrize(
    "metric",
    [
        pytest.param("cpu", id="a Resource metric"),
        pytest.param("pods", id="a direct read of the pods' proxies, not the routers"),
        pytest.param("prom", id="a Prometheus query only"),
    ],
)
def test_the_metric_must_be_read_from_the_routers(metric: str) -> None:
    data = _config(scaleToZero={"metric": metric})
    metrics = data["targets"][0]["metrics"]
    pods = {"port": 8000, "series": ["ollama_proxy_queue_depth"]}
    metrics.append({**metrics[0], "name": "pods", "direct": pods})
    metrics.append({k: v for k, v in metrics[0].items() if k != "direct"} | {"name": "prom"})
    problem = _problem(data)
    assert f"scaleToZero metric {metric!r} must be an External metric read from the routers" in (
        problem
    )


@pytest.mark.parametrize("idle", [0, 0.5, 86401, -3])
def test_idle_seconds_is_bounded(idle: float) -> None:
    problem = _problem(_config(scaleToZero={"metric": "queue", "idleSeconds": idle}))
    assert "idleSeconds" in problem and str(idle) in problem


def test_a_negative_minimum_is_refused() -> None:
    assert "minReplicas" in _problem(_config(minReplicas=-1))


def test_a_typo_in_the_block_is_an_unknown_key() -> None:
    problem = _problem(_config(scaleToZero={"metric": "queue", "idleSecond": 5}))
    assert "idleSecond" in problem


def test_config_check_shows_the_range_from_zero_and_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("SCALER_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "zero.yaml"
    path.write_text(yaml.safe_dump(_config()))
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "chatbot/ollama: 0..10 replicas" in out
    assert (
        "scale to zero: 0 -> 1 at once when queue > 0; 1 -> 0 once queue has read 0 for 600 s"
        in (out)
    )
