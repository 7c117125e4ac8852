"""The configuration model: HPA syntax in, clear errors out."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaler.config import DEFAULT_CONFIG_PATH, load, parse_config
from scaler.errors import ConfigError
from scaler.policy import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    MISSION_BEHAVIOR,
    PolicyType,
    ScalingPolicy,
    SelectPolicy,
    SourceType,
    TargetType,
)

BASE: dict[str, Any] = {
    "targets": [
        {
            "namespace": "chatbot",
            "deployment": "ollama",
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "name": "queue",
                    "query": "sum(q)",
                    "target": {"type": "AverageValue", "averageValue": 1},
                }
            ],
        }
    ]
}
NOT_A_HOST = " (e.g. scaler-router-headless.chatbot.svc.cluster.local, without a scheme or port)"


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node: Any = data["targets"][0]
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[keys[-1]] = value
    return data


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def test_default_config_is_the_mission_policy() -> None:
    config = load()
    (target,) = config.targets
    policy = target.to_policy()
    assert (target.key, policy.min_replicas, policy.max_replicas) == ("chatbot/ollama", 2, 10)
    assert policy.behavior == MISSION_BEHAVIOR
    assert [(m.name, m.source, m.target_type) for m in policy.metrics] == [
        ("queue", SourceType.EXTERNAL, TargetType.AVERAGE_VALUE),
        ("cpu", SourceType.RESOURCE, TargetType.UTILIZATION),
    ]
    assert config.poll_interval == 2.0


def test_omitted_behavior_takes_the_hpa_defaults() -> None:
    behavior = parse_config(BASE).targets[0].to_policy().behavior
    assert behavior.scale_up == DEFAULT_SCALE_UP
    assert behavior.scale_down == DEFAULT_SCALE_DOWN
    assert behavior.scale_down.stabilization_window_seconds == 300


def test_omitted_fields_of_a_given_rule_take_their_defaults() -> None:
    data = _with(
        "behavior",
        {
            "scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
            "scaleUp": {"stabilizationWindowSeconds": 30, "tolerance": "50m"},
        },
    )
    behavior = parse_config(data).targets[0].to_policy().behavior
    assert behavior.scale_down.stabilization_window_seconds == 300
    assert behavior.scale_down.select_policy is SelectPolicy.MAX
    assert behavior.scale_down.policies == (ScalingPolicy(PolicyType.PODS, 1, 60),)
    assert behavior.scale_up.stabilization_window_seconds == 30
    assert behavior.scale_up.policies == DEFAULT_SCALE_UP.policies
    assert behavior.scale_up.tolerance == pytest.approx(0.05)
    assert behavior.scale_down.tolerance == 0.1


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        pytest.param(
            "behavior.scaleDown.policies",
            [{"type": "Percentage", "value": 50, "periodSeconds": 60}],
            "targets[0].behavior.scaleDown.policies[0].type: 'Percentage' is not one of "
            "Pods, Percent",
            id="policy-type",
        ),
        pytest.param(
            "behavior.scaleUp.selectPolicy",
            "Maximum",
            "targets[0].behavior.scaleUp.selectPolicy: 'Maximum' is not one of Max, Min, Disabled",
            id="select-policy",
        ),
        pytest.param(
            "behavior.scaleDown.stabilisationWindowSeconds",
            60,
            "targets[0].behavior.scaleDown.stabilisationWindowSeconds: unknown key "
            "(did you mean 'stabilizationWindowSeconds'?)",
            id="typo-in-key",
        ),
        pytest.param(
            "behavior.scaleDown.stabilizationWindowSeconds",
            7200,
            "targets[0].behavior.scaleDown.stabilizationWindowSeconds: Input should be less "
            "than or equal to 3600 (got 7200)",
            id="window-too-long",
        ),
        pytest.param(
            "behavior.scaleUp.policies",
            [],
            "targets[0].behavior.scaleUp.policies: List should have at least 1 item after "
            "validation, not 0 (got [])",
            id="no-policies",
        ),
        pytest.param(
            "behavior.scaleUp.policies",
            [{"type": "Pods", "value": 0, "periodSeconds": 15}],
            "targets[0].behavior.scaleUp.policies[0].value: Input should be greater than 0 (got 0)",
            id="zero-policy-value",
        ),
        pytest.param(
            "metrics.0.target",
            {"type": "Utilization", "averageUtilization": 80},
            "targets[0].metrics[0]: target type 'Utilization' is not allowed for a External "
            "metric (allowed: Value, AverageValue)",
            id="utilization-on-external",
        ),
        pytest.param(
            "metrics.0.target",
            {"type": "Value", "averageValue": 3},
            "targets[0].metrics[0].target: type Value needs exactly the field 'value' "
            "(given: averageValue)",
            id="target-field-mismatch",
        ),
        pytest.param(
            "metrics.0.target",
            {"type": "AverageValue", "averageValue": "lots"},
            "targets[0].metrics[0].target.averageValue: 'lots' is not a number or a "
            "Kubernetes quantity (e.g. 500m, 2, 1.5k)",
            id="bad-quantity",
        ),
        pytest.param(
            "minReplicas",
            11,
            "targets[0]: minReplicas 11 is greater than maxReplicas 10",
            id="min-above-max",
        ),
        pytest.param(
            "pollInterval",
            0.1,
            "targets[0].pollInterval: Input should be greater than or equal to 0.5 (got 0.1)",
            id="poll-too-fast",
        ),
        pytest.param(
            "metrics.0.name",
            "queue depth",
            "targets[0].metrics[0].name: String should match pattern "
            "'^[a-zA-Z_][a-zA-Z0-9_]*$' (got 'queue depth')",
            id="metric-name-not-a-label",
        ),
        pytest.param(
            "metrics.0.direct",
            {"host": "http://routers:11434", "port": 11434, "series": ["q"]},
            "targets[0].metrics[0].direct.host: 'http://routers:11434' is neither a DNS name "
            "nor an IP address" + NOT_A_HOST,
            id="direct-host-with-scheme",
        ),
        pytest.param(
            "metrics.0.direct",
            {"host": "scaler_router.chatbot", "port": 11434, "series": ["q"]},
            "targets[0].metrics[0].direct.host: 'scaler_router.chatbot' is neither a DNS name "
            "nor an IP address" + NOT_A_HOST,
            id="direct-host-underscore",
        ),
        pytest.param(
            "metrics.0.direct",
            {"host": "a" * 64 + ".svc", "port": 11434, "series": ["q"]},
            f"targets[0].metrics[0].direct.host: '{'a' * 64}.svc' is neither a DNS name nor an "
            "IP address" + NOT_A_HOST,
            id="direct-host-label-too-long",
        ),
        pytest.param(
            "metrics.0.direct",
            {"host": "routers.chatbot.svc", "port": 0, "series": ["q"]},
            "targets[0].metrics[0].direct.port: Input should be greater than or equal to 1 (got 0)",
            id="direct-port-zero",
        ),
        pytest.param(
            "metrics.0.direct",
            {"host": "routers.chatbot.svc", "series": ["q"]},
            "targets[0].metrics[0].direct.port: required key is missing",
            id="direct-host-without-port",
        ),
        pytest.param(
            "metrics.0.direct",
            {"hots": "routers.chatbot.svc", "port": 11434, "series": ["q"]},
            "targets[0].metrics[0].direct.hots: unknown key (did you mean 'host'?)",
            id="direct-host-typo",
        ),
    ],
)
def test_bad_input_names_the_key_and_the_value(path: str, value: Any, expected: str) -> None:
    assert expected in _problems(_with(path, value))


def test_every_problem_is_reported_at_once() -> None:
    data = _with("behavior", {"scaleUp": {"selectPolicy": "Fastest", "polices": []}})
    data["targets"][0]["maxReplicas"] = "ten"
    problems = _problems(data)
    assert len(problems) == 3
    assert any("maxReplicas" in p and "'ten'" in p for p in problems)
    assert any("'Fastest' is not one of" in p for p in problems)
    assert any("polices: unknown key (did you mean 'policies'?)" in p for p in problems)


def test_duplicate_targets_and_metric_names_are_rejected() -> None:
    data = copy.deepcopy(BASE)
    data["targets"].append(copy.deepcopy(data["targets"][0]))
    assert _problems(data) == ["targets: each Deployment may appear once: chatbot/ollama"]
    data = copy.deepcopy(BASE)
    metrics = data["targets"][0]["metrics"]
    metrics.append(copy.deepcopy(metrics[0]))
    assert _problems(data) == ["targets[0]: metric names must be unique: queue"]


def test_missing_required_keys_are_named() -> None:
    data = copy.deepcopy(BASE)
    del data["targets"][0]["maxReplicas"]
    assert _problems(data) == ["targets[0].maxReplicas: required key is missing"]


def test_load_config_reports_the_file(tmp_path: Path) -> None:
    path = tmp_path / "scaler.yaml"
    path.write_text("targets: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"scaler.yaml: invalid configuration:\n  not valid YAML"):
        load(path)
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a mapping, not list"):
        load(path)
    with pytest.raises(ConfigError, match="cannot read the file"):
        load(tmp_path / "absent.yaml")


def test_an_hpa_behavior_block_pastes_verbatim(tmp_path: Path) -> None:
    hpa = yaml.safe_load(
        """
        behavior:
          scaleDown:
            stabilizationWindowSeconds: 60
            policies:
            - type: Percent
              value: 50
              periodSeconds: 60
          scaleUp:
            stabilizationWindowSeconds: 0
            policies:
            - type: Percent
              value: 100
              periodSeconds: 15
        """
    )
    data = _with("behavior", hpa["behavior"])
    assert parse_config(data).targets[0].to_policy().behavior == MISSION_BEHAVIOR


def test_default_config_file_is_packaged() -> None:
    assert DEFAULT_CONFIG_PATH.is_file()


@pytest.mark.parametrize(
    "host",
    [
        "scaler-router-headless.chatbot.svc.cluster.local",
        "scaler-router-headless.chatbot.svc.cluster.local.",
        "scaler-router-headless",
        "127.0.0.1",
        "fd00::10",
    ],
)
def test_direct_host_takes_a_dns_name_or_an_ip(host: str) -> None:
    data = _with("metrics.0.direct", {"host": host, "port": 11434, "series": ["q"]})
    direct = parse_config(data).targets[0].metrics[0].direct
    assert direct is not None and direct.host == host


def test_the_two_direct_sources_say_where_they_read() -> None:
    pods = {"port": 11434, "series": ["ollama_proxy_queue_depth"]}
    routers = {**pods, "host": "routers.chatbot.svc", "series": ["a", "b"]}
    metric = parse_config(_with("metrics.0.direct", pods)).targets[0].metrics[0]
    assert metric.reads == [
        "reads the pods' proxies directly: each ready pod, http://POD_IP:11434/metrics",
        "sums ollama_proxy_queue_depth; if any cannot be read: the query",
    ]
    metric = parse_config(_with("metrics.0.direct", routers)).targets[0].metrics[0]
    assert metric.reads == [
        "reads the routers directly: every address of routers.chatbot.svc, "
        "http://ADDRESS:11434/metrics",
        "sums a + b; if any cannot be read: the query",
    ]
    assert parse_config(BASE).targets[0].metrics[0].reads == ["reads Prometheus (the query)"]


def test_the_default_queue_is_read_from_the_routers() -> None:
    queue = load().targets[0].metrics[0]
    assert queue.direct is not None
    assert queue.direct.host == "scaler-router-headless.chatbot.svc.cluster.local"
    assert queue.direct.series == ["scaler_router_queue_depth", "scaler_router_requests_in_flight"]
    # The fallback counts the same thing from the same exporters, only older.
    assert set(re.findall(r"scaler_router_\w+", queue.query)) == set(queue.direct.series)
