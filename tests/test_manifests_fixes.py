"""Issue 12, point 6, in the manifests: no env key twice in a container (server-side
apply rejects it), a hash suffix on every ConfigMap a long-running pod reads (so a
change rolls the pods), the Ollama warm-up a load through the proxy (no generation,
and counted), and the OpenAI patch in docs/deploy.md that switches a setting on
instead of adding a second one.

The stack's builds and helpers are tests/test_manifests.py's.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from scaler.proxy.app import build_app
from scaler.proxy.settings import ProxySettings
from tests.support.fake_ollama import running_fake_ollama
from tests.support.threaded_server import serve_in_thread
from tests.test_manifests import (
    BUILDS,
    MANIFESTS,
    ROOT,
    Obj,
    build,
    containers,
    kubectl,
    objects,
    one,
    pod_specs,
)

# Pods that run until replaced; a Job's pod reads its ConfigMaps when it runs, and
# its template is immutable, so a renamed ConfigMap would block the next apply.
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}
HASHED = re.compile(r".+-[a-z0-9]{10}")
PROXY_ADDRESS = "/dev/tcp/127.0.0.1/11434"
DEPLOYMENT = ("Deployment", "open-webui")


def env_names(container: Obj) -> list[str]:
    return [e["name"] for e in container.get("env", [])]


def duplicate_env(objects_: tuple[Obj, ...]) -> list[tuple[str, str, str]]:
    found = []
    for o in objects_:
        if o["kind"] not in LONG_RUNNING | {"Job"}:
            continue
        for container in containers(o["spec"]["template"]):
            for key, count in Counter(env_names(container)).items():
                if count > 1:
                    found.append((o["metadata"]["name"], container["name"], key))
    return found


@pytest.mark.parametrize("name", BUILDS)
def test_no_container_sets_an_env_key_twice(name: str) -> None:
    assert not duplicate_env(build(name))


def config_maps_read(pod: Obj) -> Iterator[str]:
    spec = pod["spec"]
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            yield volume["configMap"]["name"]
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                yield source["configMap"]["name"]
    for container in containers(pod):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("configMapKeyRef")
            if ref is not None:
                yield ref["name"]
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                yield source["configMapRef"]["name"]


@pytest.mark.parametrize("name", BUILDS)
def test_every_config_map_a_long_running_pod_reads_is_hashed(name: str) -> None:
    existing = {c["metadata"]["name"] for c in objects(name, "ConfigMap")}
    for workload, pod in pod_specs(name):
        if workload["kind"] not in LONG_RUNNING:
            continue
        for config in config_maps_read(pod):
            where = f"{name}: {workload['metadata']['name']} reads ConfigMap {config}"
            assert config in existing, where
            assert HASHED.fullmatch(config), where + ", whose name has no hash suffix"


def test_the_ready_model_is_one_the_job_pulls_and_rolls_the_ollama_pods() -> None:
    pod = one("base", "Deployment", "ollama")["spec"]["template"]
    names = set(config_maps_read(pod))
    assert [n for n in names if n.startswith("ollama-ready-model-")], names


# --- the warm-up -------------------------------------------------------------------


def warm_up_function() -> str:
    ollama = next(
        c
        for c in one("base", "Deployment", "ollama")["spec"]["template"]["spec"]["containers"]
        if c["name"] == "ollama"
    )
    assert ollama["command"][:2] == ["/bin/bash", "-c"], "the warm-up needs bash's /dev/tcp"
    match = re.search(r"^load_ready_model\(\) \{\n.*?^\}\n", ollama["command"][2], re.M | re.S)
    assert match, "the Ollama container defines load_ready_model()"
    assert match.group(0).count(PROXY_ADDRESS) == 1, "it loads through the proxy's port"
    return match.group(0)


def run_warm_up(port: int) -> subprocess.CompletedProcess[str]:
    function = warm_up_function().replace(PROXY_ADDRESS, f"/dev/tcp/127.0.0.1/{port}")
    return subprocess.run(
        ["bash", "-c", function + "load_ready_model"],
        env={"READY_MODEL": "llama3.2", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_warm_up_loads_the_ready_model_through_the_proxy_without_a_prompt() -> None:
    with running_fake_ollama() as fake:
        settings = ProxySettings(upstream=fake.url, ready_model="llama3.2", max_queue=0)
        with serve_in_thread(build_app(settings)) as url, httpx.Client(base_url=url) as http:
            assert http.get("/readyz").status_code == 503
            result = run_warm_up(httpx.URL(url).port or 0)
            assert result.returncode == 0, result.stdout + result.stderr
            assert http.get("/readyz").status_code == 200
            counted = http.get("/metrics").text
    generate = [r for r in fake.requests if r.path == "/api/generate"]
    assert len(generate) == 1
    assert generate[0].body == {"model": "llama3.2", "keep_alive": -1, "stream": False}
    # The proxy counted it as an inference request: it held the pod's slot.
    assert re.search(r'ollama_proxy_requests_total\{[^}]*path="/api/generate"', counted)


def test_the_warm_up_fails_and_is_retried_while_the_proxy_is_not_up() -> None:
    with serve_in_thread(build_app(ProxySettings())) as url:
        port = httpx.URL(url).port or 0
    result = run_warm_up(port)  # the server is gone: nothing listens there now
    assert result.returncode == 1
    assert "Connection refused" in result.stderr


# --- the OpenAI patch in docs/deploy.md ---------------------------------------------


def documented_openai_patch() -> str:
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("## OpenAI-compatible APIs", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "one yaml block in the OpenAI section"
    return str(blocks[0])


def test_the_documented_openai_patch_switches_the_setting_on_once(tmp_path: Path) -> None:
    patches = yaml.safe_load(documented_openai_patch())["patches"]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS / "overlays" / "minikube", tmp_path)],
        "patches": patches,
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = subprocess.run(
        [kubectl(), "kustomize", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    rendered = tuple(d for d in yaml.safe_load_all(result.stdout) if d)
    assert not duplicate_env(rendered)
    webui = next(o for o in rendered if (o["kind"], o["metadata"]["name"]) == DEPLOYMENT)
    env = webui["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "ENABLE_OPENAI_API", "value": "true"} in env
