"""Deployments, their ``scale`` subresource and pods' metadata, for the fake API server
(``tests/support/fake_kube.py``): what the actuator reads and scales and what the
victim marker annotates.

A Deployment's ``scale`` is a view of the Deployment, not an object of its own: it
serves the Deployment's resourceVersion, and a write to it changes the Deployment's.
A pod PATCH may change only metadata, and a deletion cost must be a 32-bit integer,
as the apiserver validates it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support import fake_kube_objects as objects
from tests.support.fake_kube_protocol import (
    NAMESPACED,
    ApiError,
    conflict,
    find,
    merge,
    patch_body,
    version_of,
)

if TYPE_CHECKING:
    from tests.support.fake_kube import FakeKube

_APPS = "/apis/apps/v1" + NAMESPACED + "/deployments/{name}"
_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def _is_int32(text: object) -> bool:
    """As upstream GetDeletionCostFromPodAnnotations: no '+', no leading zeros."""
    if not isinstance(text, str) or not re.fullmatch(r"0|-?[1-9][0-9]*", text):
        return False
    return -(2**31) <= int(text) < 2**31


class Workloads:
    """The handlers of deployments, their scale and pods, over ``fake``'s store."""

    def __init__(self, fake: FakeKube) -> None:
        self._fake = fake

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(_APPS, self._get_deployment)
        router.add_patch(_APPS, self._patch_deployment)
        router.add_get(_APPS + "/scale", self._get_scale)
        router.add_patch(_APPS + "/scale", self._patch_scale)
        router.add_put(_APPS + "/scale", self._put_scale)
        router.add_patch("/api/v1" + NAMESPACED + "/pods/{name}", self._patch_pod)

    def _deployment(self, request: web.Request) -> dict[str, Any]:
        return find(self._fake.objects, "deployments", request, "deployments.apps")

    async def _get_deployment(self, request: web.Request) -> web.Response:
        return web.json_response(self._deployment(request))

    async def _patch_deployment(self, request: web.Request) -> web.Response:
        current = self._deployment(request)
        merged = merge(current, await patch_body(request))
        for fixed in ("name", "namespace", "uid", "creationTimestamp"):
            merged["metadata"][fixed] = current["metadata"][fixed]
        if merged["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise conflict("deployments.apps", current["metadata"]["name"])
        if merged != current:
            if merged["spec"] != current["spec"]:
                merged["metadata"]["generation"] = current["metadata"]["generation"] + 1
            current = self._fake._store("deployments", merged)
        return web.json_response(current)

    def _scale_of(self, deployment: dict[str, Any]) -> dict[str, Any]:
        meta = deployment["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": deployment["spec"]["replicas"]},
            "status": {
                "replicas": deployment["status"]["replicas"],
                "selector": objects.format_selector(deployment["spec"]["selector"]),
            },
        }

    async def _get_scale(self, request: web.Request) -> web.Response:
        return web.json_response(self._scale_of(self._deployment(request)))

    async def _patch_scale(self, request: web.Request) -> web.Response:
        deployment = self._deployment(request)
        scale = merge(self._scale_of(deployment), await patch_body(request))
        return web.json_response(self._write_scale(deployment, scale))

    async def _put_scale(self, request: web.Request) -> web.Response:
        deployment = self._deployment(request)
        scale = await request.json()
        if not scale.get("metadata", {}).get("resourceVersion"):  # scale allows unconditional
            scale.setdefault("metadata", {})["resourceVersion"] = version_of(deployment)
        return web.json_response(self._write_scale(deployment, scale))

    def _write_scale(self, deployment: dict[str, Any], scale: dict[str, Any]) -> dict[str, Any]:
        name = deployment["metadata"]["name"]
        if scale.get("metadata", {}).get("resourceVersion") != version_of(deployment):
            raise conflict("deployments.apps", name)
        replicas = scale.get("spec", {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(
                422,
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas!r}: must be greater than or equal to 0",
            )
        if replicas != deployment["spec"]["replicas"]:
            deployment["spec"]["replicas"] = replicas
            deployment["metadata"]["generation"] += 1
            deployment = self._fake._store("deployments", deployment)
        return self._scale_of(deployment)

    async def _patch_pod(self, request: web.Request) -> web.Response:
        """A merge patch of a pod's metadata (what scaler writes: annotations)."""
        current = find(self._fake.objects, "pods", request, "pods")
        patch = await patch_body(request)
        if set(patch) - {"metadata"}:
            raise ApiError(422, f"this fake patches only pod metadata, got {sorted(patch)}")
        merged = merge(current, patch)
        cost = (merged["metadata"].get("annotations") or {}).get(_DELETION_COST)
        if cost is not None and not _is_int32(cost):  # upstream ValidatePodSpecificAnnotations
            raise ApiError(
                422,
                f'Pod "{current["metadata"]["name"]}" is invalid: metadata.annotations'
                f"[{_DELETION_COST}]: Invalid value: {cost!r}: must be a 32bit integer",
            )
        for fixed in ("name", "namespace", "creationTimestamp"):
            merged["metadata"][fixed] = current["metadata"][fixed]
        stored = self._fake._store("pods", merged) if merged != current else current
        return web.json_response(stored)
