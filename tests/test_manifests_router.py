"""The router in the manifests (issue 11): Open WebUI -> Service `scaler-router` ->
a router pod -> the chosen pod's proxy -> Ollama in every overlay but `cpu-hpa`, which
keeps the seed's shape (Open WebUI -> Service `ollama` -> a proxy with its own queue).

The builds and helpers are tests/test_manifests.py's; the router's flags go through
the real `scaler` parser and the router's own settings.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import pytest

from scaler.proxy.settings import load_proxy_settings
from scaler.quantity import parse_quantity
from tests.test_manifests import (
    BUILDS,
    NAMESPACE,
    Obj,
    build,
    jobs,
    objects,
    one,
    prometheus_config,
    router_series,
    rule_triples,
    scaler_args,
    scaler_config,
    selected_pods,
)

SEED = "cpu-hpa"
ROUTED = [b for b in BUILDS if b != SEED]
ROUTER = "scaler-router"
ROUTER_RULES = {("discovery.k8s.io", "endpointslices", v) for v in ("get", "list", "watch")}


def pod_spec(name: str, deployment: str) -> Obj:
    spec: Obj = one(name, "Deployment", deployment)["spec"]["template"]["spec"]
    return spec


def container(name: str, deployment: str, container_name: str) -> Obj:
    found = [c for c in pod_spec(name, deployment)["containers"] if c["name"] == container_name]
    assert len(found) == 1, (name, deployment, container_name)
    return found[0]


def router_args(name: str) -> argparse.Namespace:
    args = scaler_args(container(name, ROUTER, "router"))
    assert args.command == "router"
    return args


def proxy_args(name: str) -> argparse.Namespace:
    args = scaler_args(container(name, "ollama", "proxy"))
    assert args.command == "proxy"
    return args


def env_value(container_: Obj, key: str) -> Any:
    values = [e.get("value") for e in container_.get("env", []) if e["name"] == key]
    assert len(values) == 1, (container_["name"], key)
    return values[0]


def service_port(name: str, service: str, port: int) -> Obj:
    found = [p for p in one(name, "Service", service)["spec"]["ports"] if p["port"] == port]
    assert len(found) == 1, (name, service, port)
    return found[0]


def container_port(container_: Obj, port: str | int) -> int:
    for declared in container_.get("ports", []):
        if port in (declared["containerPort"], declared.get("name")):
            number: int = declared["containerPort"]
            return number
    raise AssertionError(f"{container_['name']} declares no port {port!r}")


# --- who talks to whom --------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDS)
def test_open_webui_talks_to_the_router_except_in_the_seeds_stack(name: str) -> None:
    url = env_value(container(name, "open-webui", "open-webui"), "OLLAMA_BASE_URL")
    match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", url)
    assert match, url
    assert match.group(1) == ("ollama" if name == SEED else ROUTER)
    # The Service has that port (where every Service port lands is checked for all).
    service_port(name, match.group(1), int(match.group(2)))


def admitted(name: str, app: str, port: int) -> set[str]:
    """Who the NetworkPolicies let reach pods labelled `app` on `port`: the peers'
    app labels, or `namespace:NAME` for a namespace selector."""
    pods = selected_pods(name, {"app.kubernetes.io/name": app})
    assert pods, app
    labels = pods[0]["metadata"]["labels"]
    peers: set[str] = set()
    for policy in objects(name, "NetworkPolicy"):
        if not policy["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items():
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [{"port": port}])}
            if port not in ports:
                continue
            for peer in rule["from"]:
                if "podSelector" in peer:
                    peers.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
                else:
                    selector = peer["namespaceSelector"]["matchLabels"]
                    peers.add("namespace:" + selector["kubernetes.io/metadata.name"])
    return peers


@pytest.mark.parametrize("name", BUILDS)
def test_only_the_router_scaler_and_prometheus_reach_the_ollama_pods(name: str) -> None:
    front = "open-webui" if name == SEED else ROUTER
    scaler = set() if name == SEED else {"scaler"}
    assert admitted(name, "ollama", 11434) == {front, "prometheus", *scaler}


@pytest.mark.parametrize("name", ROUTED)
def test_open_webui_scaler_and_prometheus_reach_the_routers(name: str) -> None:
    assert admitted(name, ROUTER, router_args(name).port) == {
        "open-webui",
        "scaler",
        "prometheus",
    }


@pytest.mark.parametrize("name", BUILDS)
def test_the_writer_takes_model_management_from_whoever_sends_it(name: str) -> None:
    senders = {"ollama", "ollama-pull-models"} | (set() if name == SEED else {ROUTER})
    assert admitted(name, "ollama-writer", 11434) == senders


# --- the router's flags ---------------------------------------------------------------


@pytest.mark.parametrize("name", ROUTED)
def test_the_router_takes_its_flags_and_finds_the_ollama_pods(name: str) -> None:
    from scaler.router.settings import RouterSettings, load_router_settings

    args = router_args(name)
    given = {k: v for k, v in vars(args).items() if k in RouterSettings.model_fields}
    settings = load_router_settings(**given, endpoints=args.endpoint)
    assert not settings.endpoints, "in the cluster the router discovers the pods"
    assert settings.namespace == one(name, "Deployment", ROUTER)["metadata"]["namespace"]
    ollama = one(name, "Service", settings.service)
    assert ollama["spec"]["selector"] == {"app.kubernetes.io/name": "ollama"}
    assert settings.port_name in {p["name"] for p in ollama["spec"]["ports"]}
    assert settings.port == container_port(container(name, ROUTER, "router"), "http")
    assert settings.management_upstream == proxy_args(name).management_upstream
    assert settings.management_upstream == f"http://ollama-writer.{NAMESPACE}.svc:11434"
    assert settings.max_queue == 64


@pytest.mark.parametrize("name", BUILDS)
def test_the_proxy_queues_only_where_no_router_does(name: str) -> None:
    args = proxy_args(name)
    given = {k: v for k, v in vars(args).items() if k not in {"command", "handler", "log_level"}}
    settings = load_proxy_settings(**given)
    assert settings.max_queue == (16 if name == SEED else 0)


@pytest.mark.parametrize("name", BUILDS)
def test_slots_per_pod_agree_between_ollama_its_proxy_and_the_router(name: str) -> None:
    ollama = int(env_value(container(name, "ollama", "ollama"), "OLLAMA_NUM_PARALLEL"))
    assert proxy_args(name).parallel == ollama
    if name != SEED:
        assert router_args(name).parallel == ollama


# --- the router's pods ------------------------------------------------------------------


@pytest.mark.parametrize("name", ROUTED)
def test_the_router_probes_its_health_and_readiness_on_its_port(name: str) -> None:
    router = container(name, ROUTER, "router")
    port = router_args(name).port
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        handler = router[probe]["httpGet"]
        assert handler["path"] == path
        assert container_port(router, handler["port"]) == port


@pytest.mark.parametrize("name", ROUTED)
def test_two_routers_and_a_budget_that_keeps_one(name: str) -> None:
    deployment = one(name, "Deployment", ROUTER)
    budget = one(name, "PodDisruptionBudget", ROUTER)
    assert budget["spec"]["minAvailable"] == 1
    assert deployment["spec"]["replicas"] == 2
    selected = selected_pods(name, budget["spec"]["selector"]["matchLabels"])
    assert selected == [deployment["spec"]["template"]]
    affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in affinity, "one minikube node"


@pytest.mark.parametrize("name", ROUTED)
def test_the_router_finishes_its_streams_before_it_is_killed(name: str) -> None:
    router = pod_spec(name, ROUTER)
    sleep = container(name, ROUTER, "router")["lifecycle"]["preStop"]["sleep"]["seconds"]
    ollama_grace = pod_spec(name, "ollama")["terminationGracePeriodSeconds"]
    assert router["terminationGracePeriodSeconds"] >= sleep + ollama_grace


@pytest.mark.parametrize("name", ROUTED)
def test_the_router_is_sized_for_a_small_asyncio_process(name: str) -> None:
    resources = container(name, ROUTER, "router")["resources"]
    memory = parse_quantity(resources["requests"]["memory"])
    assert 80 * 2**20 <= memory <= parse_quantity(resources["limits"]["memory"]) / 2
    assert parse_quantity(resources["requests"]["cpu"]) <= 0.25


@pytest.mark.parametrize("name", BUILDS)
def test_scaler_pods_get_no_service_link_variables(name: str) -> None:
    """With service links, Service `scaler-router` puts SCALER_ROUTER_PORT=tcp://...
    into every pod, which the router's settings read as its --port."""
    for workload in objects(name, "Deployment"):
        spec = workload["spec"]["template"]["spec"]
        if any(c["image"].startswith("scaler:") for c in spec["containers"]):
            assert spec.get("enableServiceLinks") is False, workload["metadata"]["name"]


@pytest.mark.parametrize("name", ROUTED)
def test_one_label_finds_every_router_object(name: str) -> None:
    """docs/deploy.md removes the router with `-l app.kubernetes.io/name=scaler-router`."""
    named = {(o["kind"], o["metadata"]["name"]) for o in build(name)}
    labelled = {
        (o["kind"], o["metadata"]["name"])
        for o in build(name)
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == ROUTER
    }
    assert labelled == {k for k in named if k[1].startswith(ROUTER)}


# --- RBAC and Services ------------------------------------------------------------------


@pytest.mark.parametrize("name", ROUTED)
def test_the_router_may_only_read_endpointslices(name: str) -> None:
    assert rule_triples(one(name, "Role", ROUTER)) == ROUTER_RULES
    binding = one(name, "RoleBinding", ROUTER)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": ROUTER,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": ROUTER, "namespace": NAMESPACE}
    ]
    assert pod_spec(name, ROUTER)["serviceAccountName"] == ROUTER
    one(name, "ServiceAccount", ROUTER)
    for cluster_binding in objects(name, "ClusterRoleBinding"):
        assert ROUTER not in {s["name"] for s in cluster_binding["subjects"]}


@pytest.mark.parametrize("name", ROUTED)
def test_the_headless_service_lists_every_ready_router(name: str) -> None:
    headless = one(name, "Service", ROUTER + "-headless")["spec"]
    assert headless["clusterIP"] == "None"
    assert not headless.get("publishNotReadyAddresses", False)
    assert headless["selector"] == one(name, "Service", ROUTER)["spec"]["selector"]
    port = router_args(name).port
    target = service_port(name, ROUTER + "-headless", port)["targetPort"]
    assert container_port(container(name, ROUTER, "router"), target) == port


@pytest.mark.parametrize("name", ROUTED)
def test_the_scaler_reads_the_routers_where_they_are(name: str) -> None:
    """If a metric reads the routers directly, its host is the headless Service and
    its series are ones the router exports; a query on the routers' series uses
    labels their scrape job gives."""
    labels = {r.get("target_label") for r in jobs()[ROUTER]["relabel_configs"]}
    for target in scaler_config(name).targets:
        for metric in target.metrics:
            for used in re.findall(r"scaler_router_\w+", metric.query):
                assert used in router_series(), used
                assert set(re.findall(r'(\w+)="', metric.query)) <= labels
            host = getattr(metric.direct, "host", None)
            if host is None:
                continue
            service, _, rest = host.partition(".")
            assert rest in {"", NAMESPACE, f"{NAMESPACE}.svc", f"{NAMESPACE}.svc.cluster.local"}
            assert one(name, "Service", service)["spec"]["clusterIP"] == "None"
            service_port(name, service, metric.direct.port)
            assert set(metric.direct.series) <= router_series()


# --- Prometheus -------------------------------------------------------------------------


def relabel_keeps(job: Obj, meta: dict[str, str]) -> bool:
    """Whether a job's keep/drop relabelling keeps a target with these labels."""
    for relabel in job.get("relabel_configs", []):
        action = relabel.get("action", "replace")
        if action not in {"keep", "drop"}:
            continue
        value = relabel.get("separator", ";").join(
            meta.get(label, "") for label in relabel["source_labels"]
        )
        matches = re.fullmatch(relabel["regex"], value) is not None
        if matches != (action == "keep"):
            return False
    return True


def pod_meta(name: str, deployment: str) -> dict[str, str]:
    template = one(name, "Deployment", deployment)["spec"]["template"]
    meta = {"__meta_kubernetes_namespace": NAMESPACE, "__meta_kubernetes_pod_phase": "Running"}
    for key, value in template["metadata"].get("labels", {}).items():
        meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    for key, value in template["metadata"].get("annotations", {}).items():
        meta["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    return meta


@pytest.mark.parametrize(
    ("deployment", "job"),
    [
        pytest.param("ollama", "ollama-proxies", id="proxies"),
        pytest.param("scaler", "scaler", id="scaler"),
        pytest.param(ROUTER, ROUTER, id="router"),
    ],
)
def test_each_pod_is_scraped_by_exactly_its_job(deployment: str, job: str) -> None:
    pod_jobs = [
        j
        for j in prometheus_config()["scrape_configs"]
        if any(b["role"] == "pod" for b in j.get("kubernetes_sd_configs", []))
    ]
    keeping = {j["job_name"] for j in pod_jobs if relabel_keeps(j, pod_meta("base", deployment))}
    assert keeping == {job}


def test_the_routers_are_scraped_every_second_with_their_pod_labels_kept() -> None:
    job = jobs()[ROUTER]
    assert job["scrape_interval"] == "1s"
    # The per-pod series name the Ollama pod in `pod`: Prometheus must not rename it.
    assert job["honor_labels"] is True
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"namespace", "pod"} <= targets
    annotations = one("base", "Deployment", ROUTER)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(router_args("base").port)
    assert annotations["prometheus.io/path"] == "/metrics"
