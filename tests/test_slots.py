"""The queue target is per slot: ``slotsPerPod`` (OLLAMA_NUM_PARALLEL) multiplies an
AverageValue target into the per-pod target the engine holds, and nothing else."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from scaler.config import load, parse_config
from scaler.controller.metrics import build_metrics
from scaler.errors import ConfigError
from scaler.policy import TargetType
from scaler.simulate.policies import build_policy
from tests.test_manifests import MANIFESTS, containers, one


def _data(**target: Any) -> dict[str, Any]:
    data = load().model_dump(by_alias=True, exclude_none=True)
    data["targets"][0].update(target)
    return copy.deepcopy(data)


def _targets(slots: int) -> dict[str, tuple[TargetType, float]]:
    (target,) = parse_config(_data(slotsPerPod=slots)).targets
    return {m.name: (m.target_type, m.target) for m in target.to_policy().metrics}


def test_an_average_value_target_is_per_slot_and_utilization_is_not() -> None:
    assert _targets(1) == {
        "queue": (TargetType.AVERAGE_VALUE, 1.0),
        "cpu": (TargetType.UTILIZATION, 80.0),
    }
    assert _targets(4) == {
        "queue": (TargetType.AVERAGE_VALUE, 4.0),
        "cpu": (TargetType.UTILIZATION, 80.0),
    }


@pytest.mark.parametrize("value", [0, -1, "four"])
def test_slots_below_one_are_refused_naming_the_key_and_value(value: object) -> None:
    with pytest.raises(ConfigError, match="slotsPerPod") as raised:
        parse_config(_data(slotsPerPod=value))
    assert repr(value) in str(raised.value) or str(value) in str(raised.value)


def test_the_exported_target_is_the_per_pod_one() -> None:
    registry = CollectorRegistry()
    build_metrics(registry, parse_config(_data(slotsPerPod=4)))
    labels = {"namespace": "chatbot", "deployment": "ollama"}
    assert registry.get_sample_value("scaler_metric_target", {**labels, "metric": "queue"}) == 4
    assert registry.get_sample_value("scaler_metric_target", {**labels, "metric": "cpu"}) == 80


def test_the_simulators_queue_policy_takes_the_models_slots() -> None:
    spec = build_policy("queue", parallel=4).spec
    assert spec is not None
    assert spec.metrics[0].target == 4.0
    assert build_policy("queue").spec.metrics[0].target == 1.0  # type: ignore[union-attr]


def test_a_config_file_keeps_its_own_slots(tmp_path: Any) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text((MANIFESTS / "base" / "config" / "scaler.yaml").read_text())
    spec = build_policy("config", config_path=path, parallel=4).spec
    assert spec is not None and spec.metrics[0].target == 1.0


def test_the_cluster_configs_slots_are_the_pods_parallel() -> None:
    (target,) = load(MANIFESTS / "base" / "config" / "scaler.yaml").targets
    pod = one("minikube", "Deployment", "ollama")["spec"]["template"]
    by_name = {c["name"]: c for c in containers(pod)}
    env = {e["name"]: e.get("value") for e in by_name["ollama"]["env"]}
    args = by_name["proxy"]["args"]
    proxy_parallel = args[args.index("--parallel") + 1]
    assert target.slots_per_pod == int(env["OLLAMA_NUM_PARALLEL"]) == int(proxy_parallel)
    assert load().targets[0].slots_per_pod == target.slots_per_pod
