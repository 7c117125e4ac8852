"""coordination.k8s.io/v1 Leases, for the fake API server (``tests/support/fake_kube.py``):
what leader election reads, creates and replaces.

The Lease is decoded as the apiserver decodes it: ``acquireTime`` and ``renewTime``
must be MicroTime (RFC 3339 with exactly six fractional digits, stored in UTC), the
counts whole numbers; a replace must carry the resourceVersion it read (409 if stale,
422 if missing).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support import fake_kube_objects as objects
from tests.support.fake_kube_protocol import (
    NAMESPACED,
    ApiError,
    already_exists,
    check_namespace,
    conflict,
    find,
    invalid,
    json_body,
    version_of,
)

if TYPE_CHECKING:
    from tests.support.fake_kube import FakeKube

_LEASES = "/apis/coordination.k8s.io/v1" + NAMESPACED + "/leases"
_WHAT = "leases.coordination.k8s.io"


class Leases:
    """The handlers of Leases, over ``fake``'s store."""

    def __init__(self, fake: FakeKube) -> None:
        self._fake = fake

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(_LEASES + "/{name}", self._get_lease)
        router.add_post(_LEASES, self._create_lease)
        router.add_put(_LEASES + "/{name}", self._replace_lease)

    async def _get_lease(self, request: web.Request) -> web.Response:
        return web.json_response(find(self._fake.objects, "leases", request, _WHAT))

    async def _create_lease(self, request: web.Request) -> web.Response:
        lease = _check_lease(await json_body(request), request.match_info["ns"])
        name = lease["metadata"]["name"]
        if ("leases", request.match_info["ns"], name) in self._fake.objects:
            raise already_exists(_WHAT, name)
        meta = lease["metadata"]
        meta.pop("resourceVersion", None)
        meta["creationTimestamp"] = objects.time_str(datetime.now().astimezone())
        return web.json_response(self._fake._store("leases", lease), status=201)

    async def _replace_lease(self, request: web.Request) -> web.Response:
        current = find(self._fake.objects, "leases", request, _WHAT)
        lease = _check_lease(await json_body(request), request.match_info["ns"])
        name = current["metadata"]["name"]
        if lease["metadata"]["name"] != name:
            raise ApiError(400, "the name of the object does not match the name on the URL")
        version = lease["metadata"].get("resourceVersion")
        if not version:
            raise ApiError(
                422,
                f'Lease.coordination.k8s.io "{name}" is invalid: metadata.resourceVersion: '
                "Invalid value: 0x0: must be specified for an update",
            )
        if version != version_of(current):
            raise conflict(_WHAT, name)
        for fixed in ("uid", "creationTimestamp"):
            lease["metadata"][fixed] = current["metadata"][fixed]
        if lease == current:
            return web.json_response(current)
        return web.json_response(self._fake._store("leases", lease))


def _check_lease(lease: dict[str, Any], namespace: str) -> dict[str, Any]:
    """Decode a Lease as the apiserver would: MicroTime fields and whole-number fields."""
    check_namespace(lease, namespace)
    if not lease["metadata"].get("name"):
        raise invalid("Lease.coordination.k8s.io", "metadata.name", "Required value")
    spec = lease.setdefault("spec", {})
    for key in ("acquireTime", "renewTime"):
        if key in spec:
            moment = objects.parse_micro_time(spec[key])
            if moment is None:
                raise ApiError(
                    400,
                    f'Lease in version "v1" cannot be handled as a Lease: spec.{key}: '
                    f"{spec[key]!r} is not RFC 3339 with microseconds",
                )
            spec[key] = objects.micro_time_str(moment)  # stored and served in UTC
    for key, minimum in (("leaseDurationSeconds", 1), ("leaseTransitions", 0)):
        value = spec.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < minimum
        ):
            raise invalid("Lease.coordination.k8s.io", f"spec.{key}", f"Invalid value: {value!r}")
    lease["kind"], lease["apiVersion"] = "Lease", "coordination.k8s.io/v1"
    return lease
