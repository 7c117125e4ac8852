"""The CPU signal means what it says: a target's ``container`` key is honoured (the
sidecar's request does not dilute utilization), and the controller's default target
names the container the cluster's HPA measures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scaler.config import load, parse_config
from scaler.controller.app import serving
from scaler.kube.actuator import KubeActuator
from scaler.quantity import parse_quantity
from scaler.simulate.replica import ModelParams
from tests.support.fake_kube import Cluster, FakeKube, running_cluster
from tests.support.loopback import no_env_proxy
from tests.test_manifests import MANIFESTS, one

POD = {"ollama": "400m", "proxy": "50m"}


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as cluster:
        cluster.fake.add_deployment("ml", "ollama", replicas=1, status_replicas=1)
        cluster.fake.add_pod("ml", "ollama-a", labels={"app": "ollama"}, containers=POD)
        yield cluster


async def test_a_view_for_one_container_counts_only_its_request(kube: Cluster) -> None:
    actuator = KubeActuator(kube.api, request_timeout=2.0, instance="scaler-0")
    ollama = actuator.with_container("ollama")
    [whole] = (await actuator.observe("ml", "ollama")).pods
    [only] = (await ollama.observe("ml", "ollama")).pods
    assert (whole.request, only.request) == (0.45, 0.4)
    # The view shares the client and the HPA list: no second list of the namespace.
    hpa_lists = [r for r in kube.fake.requests if r.path.endswith("horizontalpodautoscalers")]
    assert len(hpa_lists) == 1


async def test_a_container_the_pods_lack_leaves_them_without_a_request(kube: Cluster) -> None:
    actuator = KubeActuator(kube.api, request_timeout=2.0).with_container("olama")
    [pod] = (await actuator.observe("ml", "ollama")).pods
    assert pod.request is None  # the calculator then reports the metric as unavailable


@pytest.mark.parametrize(
    "config",
    [None, MANIFESTS / "base" / "config" / "scaler.yaml"],
    ids=["built-in", "cluster"],
)
def test_the_default_target_measures_the_container_its_cpu_query_reads(
    config: Path | None,
) -> None:
    (target,) = load(config).targets
    (cpu,) = [m for m in target.metrics if m.name == "cpu"]
    assert target.container == "ollama"
    assert f'container="{target.container}"' in cpu.query


def test_the_cpu_hpa_measures_the_same_container() -> None:
    hpa = one("cpu-hpa", "HorizontalPodAutoscaler", "ollama")
    (metric,) = hpa["spec"]["metrics"]
    (target,) = load().targets
    assert metric["containerResource"]["container"] == target.container


def test_the_simulators_cpu_model_is_the_manifests_ollama_container() -> None:
    deployment = one("minikube", "Deployment", "ollama")
    (ollama,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "ollama"
    ]
    resources = ollama["resources"]
    request = parse_quantity(str(resources["requests"]["cpu"]))
    limit = parse_quantity(str(resources["limits"]["cpu"]))
    params = ModelParams()
    assert request == limit, "request = limit: 100 % utilization is the container's whole share"
    assert (params.cpu_request, params.busy_cores) == (request, limit)


async def test_scaler_run_gives_each_target_its_containers_view(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_env_proxy(monkeypatch)
    data = load().model_dump(by_alias=True, exclude_none=True)
    data.update(metricsHost="127.0.0.1", metricsPort=0, prometheusUrl="http://127.0.0.1:9")
    second = {**data["targets"][0], "deployment": "other"}
    second.pop("container")
    data["targets"].append(second)
    async with FakeKube() as fake:
        kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig"))
        async with serving(parse_config(data), kubeconfig=kubeconfig) as (service, _):
            views = [t.actuator for t in service.controller.targets]
    assert [getattr(v, "_container", "?") for v in views] == ["ollama", None]
