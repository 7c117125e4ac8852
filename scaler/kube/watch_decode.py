"""The API server's list and watch answers, decoded: what ``Informer`` reads off the wire.

Kept apart from the informer's loop (``scaler.kube.informer``), which decides when to
list, watch and retry; this module only says what an answer holds and what makes one
malformed: an object's key and resourceVersion, a list's items, a watch stream's lines.
Malformed input raises ``ValueError`` or ``TypeError``, which the informer's calls turn
into ``KubeError`` naming the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

Object = dict[str, Any]
Key = Callable[[Object], object]
"""An object's key in the store: ``name_of`` (one namespace) or ``namespaced_name_of``."""

MAX_EVENT_BYTES = 16 * 2**20
"""The longest watch event line accepted: etcd stores objects of up to 1.5 MiB, and
aiohttp's own ``readline`` stops at 128 KiB, which a large EndpointSlice can pass."""


def name_of(obj: Object) -> object:
    return (obj.get("metadata") or {}).get("name")


def namespaced_name_of(obj: Object) -> object:
    """``namespace/name``: the key of a store that spans namespaces (client-go's
    ``MetaNamespaceKeyFunc``); None if either part is missing."""
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    return f"{namespace}/{name}" if isinstance(namespace, str) and isinstance(name, str) else None


def resource_version(obj: Object) -> str:
    """``metadata.resourceVersion``; ValueError if it is missing or empty."""
    version = (obj.get("metadata") or {}).get("resourceVersion")
    if not isinstance(version, str) or not version:
        raise ValueError(f"metadata.resourceVersion: {str(version)[:40]!r} is not a version")
    return version


def decode_list(key: Key, data: Any) -> tuple[dict[Any, Object], str]:
    """A list's items by ``key``, and its resourceVersion."""
    version = resource_version(data)
    items = {key(item): item for item in data.get("items") or []}
    if not all(isinstance(name, str) and isinstance(i, dict) for name, i in items.items()):
        raise TypeError("items: an item without a name")
    return items, version


class WatchLines:
    """The JSON lines of a watch stream, one at a time; blank lines skipped."""

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content, self._buffer = content, bytearray()

    async def next(self) -> bytes | None:
        """The next line without its newline; None at the end of the stream."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
            elif len(self._buffer) > MAX_EVENT_BYTES:
                raise ValueError(f"a watch event longer than {MAX_EVENT_BYTES} bytes")
            elif chunk := await self._content.readany():
                self._buffer += chunk
                continue
            else:
                line, self._buffer = bytes(self._buffer), bytearray()
                if not line.strip():
                    return None
            if line.strip():
                return line
