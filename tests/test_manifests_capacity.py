"""maxReplicas Ollama pods fit on the documented minikube beside the rest of the stack.

The machine is the one the README starts (``minikube start --cpus C --memory Mg``). What
workloads can request on it is an estimate, from /work/shared/notes/serving-path.md
("minikube"): ``--cpus 6`` leaves roughly 4 CPUs after the control plane, Calico and the
ingress controller, so about 2 CPUs go to them whatever the node's size; their memory
requests (etcd, CoreDNS, ingress-nginx) and the kubelet's eviction threshold stay under
1 GiB. docs/deploy.md ("Capacity") states the same figures.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from scaler.config import load
from scaler.quantity import parse_quantity
from tests.test_manifests import MANIFESTS, pod_specs

ROOT = MANIFESTS.parent
SYSTEM_CPU = 2.0  # cores: the control plane, Calico, ingress-nginx (estimate, see above)
SYSTEM_MEMORY = 1.0 * 2**30  # bytes: their requests plus the eviction threshold (estimate)
MACHINE = re.compile(r"minikube start --cpus (\d+) --memory (\d+)g")

Obj = dict[str, Any]


def documented_machine(path: Path) -> tuple[int, int]:
    """(CPUs, GiB) of the ``minikube start`` line in ``path``; exactly one such line."""
    found = set(MACHINE.findall(path.read_text()))
    assert len(found) == 1, f"{path}: expected one `minikube start` machine, found {found}"
    ((cpus, gib),) = found
    return int(cpus), int(gib)


def pod_requests(pod: Obj) -> tuple[float, float]:
    """(cores, bytes) the scheduler reserves for one pod: the sum over its containers,
    or its largest init container if that is more (the effective request)."""

    def request(container: Obj, resource: str) -> float:
        value = (container.get("resources") or {}).get("requests", {}).get(resource, "0")
        return parse_quantity(str(value))

    spec = pod["spec"]
    inits = spec.get("initContainers", [])
    cpu = sum(request(c, "cpu") for c in spec["containers"])
    memory = sum(request(c, "memory") for c in spec["containers"])
    cpu = max([cpu, *(request(c, "cpu") for c in inits)])
    memory = max([memory, *(request(c, "memory") for c in inits)])
    return cpu, memory


def stack_requests(name: str, *, ollama_pods: int) -> tuple[float, float]:
    """(cores, bytes) requested by the build ``name`` with ``ollama_pods`` Ollama pods."""
    cpu = memory = 0.0
    for workload, pod in pod_specs(name):
        if workload["metadata"]["name"] == "ollama":
            count = ollama_pods
        else:
            count = workload["spec"].get("replicas", 1)  # a Job's pod counts once
        pod_cpu, pod_memory = pod_requests(pod)
        cpu += count * pod_cpu
        memory += count * pod_memory
    return cpu, memory


def test_the_readme_and_deploy_document_the_same_machine() -> None:
    assert documented_machine(ROOT / "README.md") == documented_machine(ROOT / "docs" / "deploy.md")


def test_max_replicas_ollama_pods_fit_the_documented_minikube() -> None:
    cpus, gib = documented_machine(ROOT / "README.md")
    allocatable_cpu, allocatable_memory = cpus - SYSTEM_CPU, gib * 2**30 - SYSTEM_MEMORY
    config = load(MANIFESTS / "base" / "config" / "scaler.yaml")
    (target,) = [t for t in config.targets if t.deployment == "ollama"]
    cpu, memory = stack_requests("minikube", ollama_pods=target.max_replicas)
    assert cpu <= allocatable_cpu, (
        f"{target.max_replicas} Ollama pods and the rest request {cpu:g} CPUs; "
        f"minikube --cpus {cpus} leaves about {allocatable_cpu:g}"
    )
    assert memory <= allocatable_memory, (
        f"{target.max_replicas} Ollama pods and the rest request {memory / 2**30:.2f} GiB; "
        f"minikube --memory {gib}g leaves about {allocatable_memory / 2**30:.2f} GiB"
    )


def test_the_sum_counts_every_ollama_pod() -> None:
    """The check above can fail: one more Ollama pod adds its whole request."""
    one = stack_requests("minikube", ollama_pods=1)
    two = stack_requests("minikube", ollama_pods=2)
    ollama = next(pod for w, pod in pod_specs("minikube") if w["metadata"]["name"] == "ollama")
    assert (two[0] - one[0], two[1] - one[1]) == pytest.approx(pod_requests(ollama))
    assert pod_requests(ollama)[0] > 0 and pod_requests(ollama)[1] > 0
