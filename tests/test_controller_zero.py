"""Scale to zero through the controller's reconcile, with a fake clock: the step's
zero rules reach the scale subresource (patch 0 -> 1 on a held request, 1 -> 0 after
the idle period) and nothing else patches 0."""

from __future__ import annotations

from typing import Any

from scaler.config import ScalerConfig, load, parse_config
from scaler.policy import Reason
from scaler.sources.base import ConnectionFailed
from tests.test_controller import KEY, Rig

IDLE = 300


def _zero_config() -> ScalerConfig:
    data: dict[str, Any] = load().model_dump(by_alias=True, exclude_none=True)
    target = data["targets"][0]
    target["metrics"][0]["query"] = "queue"
    target["metrics"][1]["query"] = "cpu"
    target["minReplicas"] = 0
    target["scaleToZero"] = {"metric": "queue", "idleSeconds": IDLE}
    return parse_config(data)


def _cpu(replicas: int) -> dict[str, float]:
    return {f"ollama-{i}": 0.05 for i in range(replicas)}


async def test_a_held_request_activates_and_idle_goes_back_to_zero() -> None:
    rig = Rig(_zero_config(), replicas=0)
    # t=0: nothing at the routers, no pod: stay at zero.
    assert await rig.at(0, queue=0.0, cpu={}) is Reason.IDLE
    assert rig.actuator.scaled == []
    # t=2: a router holds one request: one pod, at once.
    assert await rig.at(2, queue=1.0) is Reason.ACTIVATION
    assert rig.actuator.scaled == [(*KEY, 1)]
    (event,) = rig.actuator.events
    assert event[3].startswith("New size: 1; reason: queue = 1 at zero replicas")
    # t=4..600: answering it (in flight) for ten minutes: never to zero.
    for t in range(4, 602, 2):
        await rig.at(t, queue=1.0, cpu=_cpu(1))
        assert rig.replicas == 1, t
    # t=602: answered; 300 s of exact zeros at every poll, then zero.
    for t in range(602, 602 + IDLE, 2):
        await rig.at(t, queue=0.0)
        assert rig.replicas == 1, t
    assert await rig.at(602 + IDLE, queue=0.0) is Reason.SCALED_TO_ZERO
    assert rig.actuator.scaled == [(*KEY, 1), (*KEY, 0)]
    labels = {"namespace": "chatbot", "deployment": "ollama"}
    assert rig.sample("scaler_desired_replicas", **labels) == 0


async def test_an_unreadable_queue_at_zero_holds_zero_and_at_one_restarts_the_idle_period() -> None:
    rig = Rig(_zero_config(), replicas=0)
    down = ConnectionFailed("prometheus down")
    assert await rig.at(0, queue=down, cpu={}) is Reason.METRICS_UNAVAILABLE
    assert rig.actuator.scaled == []
    await rig.at(2, queue=1.0)
    assert rig.replicas == 1
    await rig.at(4, queue=0.0, cpu=_cpu(1))  # idle from t=4
    await rig.at(200, queue=down)  # unreadable: the idle period starts again
    await rig.at(202, queue=0.0)
    await rig.at(4 + IDLE, queue=0.0)
    assert rig.replicas == 1
    assert await rig.at(202 + IDLE, queue=0.0) is Reason.SCALED_TO_ZERO
    assert rig.replicas == 0
