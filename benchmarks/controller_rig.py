"""The controller benchmarks' rig: the config of N targets and their seeded state."""

from __future__ import annotations

from typing import Any

from tests.support.exporter import Exporter
from tests.support.fake_kube import FakeKube

SERIES = ["ollama_proxy_queue_depth", "ollama_proxy_requests_in_flight"]

INSTANT = {
    "scaleUp": {"policies": [{"type": "Pods", "value": 100, "periodSeconds": 1}]},
    "scaleDown": {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
    },
}


def config(prometheus: str, namespaces: list[str], **top: Any) -> dict[str, Any]:
    return {
        "prometheusUrl": prometheus,
        "pollInterval": 1,
        "metricsHost": "127.0.0.1",
        "metricsPort": 0,
        "leaderElection": {"namespace": namespaces[0]},
        "targets": [
            {
                "namespace": ns,
                "deployment": "ollama",
                "minReplicas": 2,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "name": "queue",
                        "query": f'sum(ollama_proxy_queue_depth{{namespace="{ns}"}})',
                        "target": {"type": "AverageValue", "averageValue": 1},
                    },
                    {
                        "name": "cpu",
                        "type": "Resource",
                        "query": (
                            "sum by (pod) (rate(container_cpu_usage_seconds_total"
                            f'{{namespace="{ns}"}}[5s]))'
                        ),
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                ],
                "behavior": INSTANT,
            }
            for ns in namespaces
        ],
        **top,
    }


def seed(
    kube: FakeKube, exporter: Exporter, namespace: str, *, ips: list[str] | None = None
) -> None:
    kube.add_deployment(namespace, "ollama", replicas=2)
    for i in range(2):
        ip = ips[i] if ips else None
        kube.add_pod(namespace, f"ollama-{i}", labels={"app": "ollama"}, ip=ip)
        exporter.set_queue_depth(f"ollama-{i}", 0, namespace=namespace)
        exporter.set_cpu_seconds(f"ollama-{i}", 0.0, namespace=namespace, container="ollama")
