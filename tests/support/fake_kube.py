"""A small, faithful fake Kubernetes API server for the endpoints scaler uses.

It runs on aiohttp at 127.0.0.1 on a free port, in the test's event loop, and speaks
real HTTP with the apiserver's JSON shapes (``kind``/``apiVersion``/``metadata``, and
``Status`` objects for errors), so the real kubernetes-asyncio client talks to it::

    async with running_cluster(tmp_path, monkeypatch) as kube:   # kube.fake, kube.api
        kube.fake.add_deployment("ml", "ollama", replicas=2)
        kube.fake.add_pod("ml", "ollama-a", labels={"app": "ollama"})
        kube.fake.fail("PATCH", r"/deployments/ollama/scale$", 409)   # the next such call
        await KubeActuator(kube.api, request_timeout=1).scale("ml", "ollama", 3)
        assert kube.fake.calls("PATCH", "/scale$")[-1].body["spec"] == {"replicas": 3}

Endpoints: apps/v1 deployments (GET, PATCH) and their ``scale`` subresource (GET,
PATCH, PUT); core/v1 pods (PATCH of metadata); coordination.k8s.io/v1 leases
(GET, POST, PUT); core/v1 and events.k8s.io/v1 events (POST); list and watch (by
``labelSelector``) of deployments, pods, autoscaling/v2 horizontalpodautoscalers and
discovery.k8s.io/v1 endpointslices, through ``watch``: see
``tests/support/fake_kube_watch.py``. Every request is recorded in ``requests``;
``request_counts()`` tallies them by verb and resource. The endpoints live in
``fake_kube_workloads`` (deployments, scale, pods), ``fake_kube_leases`` and
``fake_kube_events``; the apiserver's HTTP conventions they share (Status errors,
bodies, merge patches) in ``fake_kube_protocol``; the recorded requests and scripted
failures in ``fake_kube_scripted``. This module is the store, the seeding and the server.

Like the apiserver, one resourceVersion counter covers all objects; a write that
changes an object bumps it (a no-op write does not); a write that carries a stale
``metadata.resourceVersion`` gets 409 Conflict. A Deployment's ``scale`` is a view of
the Deployment, not an object of its own: it serves the Deployment's resourceVersion,
and any write to the Deployment (spec, status or metadata) changes the scale's.
Scaling a Deployment does not create or delete pods (there is no deployment
controller): tests add pods themselves.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from kubernetes_asyncio.client import ApiClient

from scaler.kube.client import api_client
from tests.support import fake_kube_objects as objects
from tests.support.fake_kube_events import Events
from tests.support.fake_kube_leases import Leases
from tests.support.fake_kube_protocol import merge
from tests.support.fake_kube_scripted import TOKEN, Scripted
from tests.support.fake_kube_watch import EndpointSlices, Watches, request_counts
from tests.support.fake_kube_workloads import Workloads
from tests.support.loopback import no_env_proxy


class FakeKube(Scripted):
    """The fake apiserver: seed state from Python, script failures, read what happened."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        """Stored objects by (resource, namespace, name); resource is the plural."""
        self.events: list[dict[str, Any]] = []
        """Every Event created (core/v1 and events.k8s.io/v1), in order."""
        self._version = 1000
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.slices = EndpointSlices(self)
        """EndpointSlices: add, change, delete them; script their watches."""
        self.watch: Watches = self.slices
        """The watches of every kind (the same object as ``slices``)."""

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> FakeKube:
        app = web.Application(middlewares=[self._middleware])
        self._routes(app.router)
        self._runner = web.AppRunner(app, handle_signals=False, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release_held()
        self.slices.close()  # open watch streams would hold the shutdown
        if self._runner is not None:
            await self._runner.cleanup()

    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        """A kubeconfig file whose current context points at this fake."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": TOKEN}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    # -- seeding and state -------------------------------------------------------

    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        replicas: int = 1,
        status_replicas: int | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        container: str = "ollama",
        cpu: str | None = "1",
        selector: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A Deployment selecting ``labels`` (default ``{"app": name}``).

        ``selector``: its ``spec.selector`` instead (matchLabels, matchExpressions).
        """
        obj = objects.deployment(
            namespace,
            name,
            replicas=replicas,
            status_replicas=replicas if status_replicas is None else status_replicas,
            labels=labels or {"app": name},
            annotations=annotations or {},
            container=container,
            cpu=cpu,
            selector=selector,
        )
        return self._store("deployments", obj)

    def add_pod(
        self,
        namespace: str,
        name: str,
        *,
        labels: dict[str, str],
        phase: str = "Running",
        ready: bool | None = True,
        ready_since: datetime | None = None,
        start_time: datetime | None = objects.EPOCH,
        containers: dict[str, str | None] | None = None,
        deleting: bool = False,
        ip: str | None = None,
    ) -> dict[str, Any]:
        """A Pod; ``containers`` maps names to CPU requests (default ``ollama: "1"``)."""
        obj = objects.pod(
            namespace,
            name,
            labels=labels,
            phase=phase,
            ready=ready,
            ready_since=ready_since,
            start_time=start_time,
            containers={"ollama": "1"} if containers is None else containers,
            deleting=deleting,
            ip=ip,
        )
        return self._store("pods", obj)

    def add_hpa(
        self,
        namespace: str,
        name: str,
        *,
        target_name: str,
        target_kind: str = "Deployment",
        target_api_version: str = "apps/v1",
    ) -> dict[str, Any]:
        obj = objects.hpa(
            namespace,
            name,
            target_kind=target_kind,
            target_name=target_name,
            target_api_version=target_api_version,
        )
        return self._store("horizontalpodautoscalers", obj)

    def add_lease(
        self,
        namespace: str,
        name: str,
        *,
        holder: str | None = None,
        duration: int | None = None,
        renew_time: datetime | None = None,
        acquire_time: datetime | None = None,
        transitions: int | None = None,
    ) -> dict[str, Any]:
        obj = objects.lease(
            namespace,
            name,
            holder=holder,
            duration=duration,
            renew_time=renew_time,
            acquire_time=acquire_time,
            transitions=transitions,
        )
        return self._store("leases", obj)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        """The stored object (a live reference; use ``update`` to change it)."""
        return self.objects[(resource, namespace, name)]

    def update(self, resource: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Another client's write: merge ``patch`` in and bump the resourceVersion."""
        key = (resource, namespace, name)
        self._store(resource, merge(self.objects[key], patch))

    def delete(self, resource: str, namespace: str, name: str) -> None:
        """Another client's delete: a DELETED event carrying the object's last state at a
        new version (the delete itself bumps it, as in etcd)."""
        obj = self.objects.pop((resource, namespace, name))
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self.watch.record(resource, "DELETED", obj)

    def request_counts(self) -> Counter[tuple[str, str]]:
        """The requests so far by (verb, resource): ``("watch", "pods")``,
        ``("patch", "deployments/scale")``; verbs are the audit log's."""
        return request_counts(self.requests)

    def _store(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Every write goes through here: a new resourceVersion and a watch event."""
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        self._version += 1
        meta["resourceVersion"] = str(self._version)
        key = (resource, meta["namespace"], meta["name"])
        kind = "MODIFIED" if key in self.objects else "ADDED"
        self.objects[key] = obj
        self.watch.record(resource, kind, obj)
        return obj

    # -- endpoints ---------------------------------------------------------------

    def _routes(self, router: web.UrlDispatcher) -> None:
        # One module per group of resources, each over this store.
        Workloads(self).routes(router)
        Leases(self).routes(router)
        Events(self).routes(router)
        self.slices.routes(router)


@dataclass(frozen=True)
class Cluster:
    """A running fake and a real kubernetes-asyncio client configured to reach it."""

    fake: FakeKube
    api: ApiClient


@contextlib.asynccontextmanager
async def running_cluster(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    """Start a FakeKube, write a kubeconfig for it in ``workdir``, open an ApiClient."""
    no_env_proxy(monkeypatch)
    async with (
        FakeKube() as fake,
        api_client(fake.write_kubeconfig(workdir / "kubeconfig")) as api,
    ):
        yield Cluster(fake, api)
