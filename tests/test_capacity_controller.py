"""Pods no node can take: read from the pod's PodScheduled condition, not counted as
capacity, exported as ``scaler_pods_unschedulable`` and logged once per change."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import pytest

from scaler.kube.pods import pod_from_json
from scaler.kube.workload import Workload
from scaler.policy import PodPhase
from tests.support import fake_kube_objects as objects
from tests.support.fakes import FakeActuator, FakeDeployment
from tests.test_controller import KEY, Rig

NO_ROOM = "0/1 nodes are available: 1 Insufficient cpu."
LABELS = {"namespace": "chatbot", "deployment": "ollama"}


def _pending(condition: dict[str, Any] | None) -> dict[str, Any]:
    obj = objects.pod(
        "chatbot",
        "ollama-7",
        labels={"app": "ollama"},
        phase="Pending",
        ready=None,
        ready_since=None,
        start_time=None,
        containers={"ollama": "1"},
        deleting=False,
    )
    if condition is not None:
        obj["status"]["conditions"] = [{"type": "PodScheduled", **condition}]
    return obj


def test_a_pod_no_node_can_take_carries_the_schedulers_message() -> None:
    condition = {"status": "False", "reason": "Unschedulable", "message": NO_ROOM}
    pod = pod_from_json(_pending(condition))
    assert (pod.phase, pod.ready, pod.unschedulable) == (PodPhase.PENDING, None, NO_ROOM)
    assert not pod.is_running_and_ready


@pytest.mark.parametrize(
    "condition",
    [
        None,  # not yet looked at by the scheduler
        {"status": "False", "reason": "SchedulingGated"},  # held on purpose, not a lack of room
        {"status": "True"},
    ],
    ids=["no-condition", "gated", "scheduled"],
)
def test_other_pending_pods_are_not_unschedulable(condition: dict[str, Any] | None) -> None:
    assert pod_from_json(_pending(condition)).unschedulable is None


def test_an_unschedulable_condition_without_a_message_still_says_so() -> None:
    pod = pod_from_json(_pending({"status": "False", "reason": "Unschedulable"}))
    assert pod.unschedulable == "no node can run it"


@dataclass
class FullNode(FakeActuator):
    """The fake's Deployments on a node that runs at most ``room`` of their pods."""

    room: int = 3

    async def observe(self, namespace: str, deployment: str) -> Workload:
        workload = await super().observe(namespace, deployment)
        pods = tuple(
            pod
            if i < self.room
            else replace(pod, phase=PodPhase.PENDING, ready=None, unschedulable=NO_ROOM)
            for i, pod in enumerate(workload.pods)
        )
        return replace(workload, pods=pods)


async def test_pods_beyond_the_node_are_exported_and_logged_once_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig(replicas=5)
    rig.actuator = rig.reconciler.actuator = FullNode({KEY: FakeDeployment(5)}, room=3)
    caplog.set_level(logging.INFO, logger="scaler.controller")

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if "schedul" in r.getMessage()]

    await rig.at(0, queue=5.0, cpu={})
    assert rig.sample("scaler_pods_unschedulable", **LABELS) == 2
    assert rig.sample("scaler_pods", **LABELS, state="ready") == 3
    assert rig.sample("scaler_pods", **LABELS, state="starting") == 0
    assert said() == [f"2 pod(s) cannot be scheduled: {NO_ROOM}"]
    warning = next(r for r in caplog.records if "schedul" in r.getMessage())
    assert warning.levelno == logging.WARNING
    assert warning.fields["pods"] == ["ollama-3", "ollama-4"]  # type: ignore[attr-defined]

    await rig.at(2)  # the same two: nothing new to say
    assert len(said()) == 1

    rig.actuator.room = 10
    await rig.at(4)
    assert rig.sample("scaler_pods_unschedulable", **LABELS) == 0
    assert said()[1:] == ["every pod is scheduled again"]


async def test_the_gauge_starts_at_zero_for_every_target() -> None:
    rig = Rig()
    assert rig.sample("scaler_pods_unschedulable", **LABELS) == 0
