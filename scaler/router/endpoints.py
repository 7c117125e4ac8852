"""What the router knows of the Ollama pods: one ``Endpoint`` per pod, by state.

Discovery (a static ``--endpoint`` list, or the Service's EndpointSlices) produces a
complete snapshot ``{key: Endpoint}`` each time anything changes; the dispatcher takes
the snapshot as a whole. A pod missing from a snapshot is gone: it gets no new request
and finishes what it holds, like a terminating one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class EndpointState(enum.Enum):
    """The EndpointSlice conditions, reduced to what routing needs.

    READY: ``ready`` (takes new requests). TERMINATING: ``terminating`` (whether or not
    still ``serving``: it finishes what it holds and gets nothing new). NOT_READY: not
    ready and not terminating (a starting pod, or one whose probe fails): nothing new.
    """

    READY = "ready"
    TERMINATING = "terminating"
    NOT_READY = "not_ready"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One Ollama pod as the router reaches it.

    ``key``: the pod's name (the EndpointSlice endpoint's ``targetRef.name``), or the
    URL itself for a static endpoint; stable for the pod's life, used as its identity
    and as the ``pod`` label of per-pod metrics. ``url``: ``http://IP:PORT``, no path.
    """

    key: str
    url: str
    state: EndpointState


Snapshot = Mapping[str, Endpoint]
"""Every endpoint known now, by key."""

OnChange = Callable[[Snapshot], None]
"""Called with the whole new snapshot after each change (never concurrently)."""


def static_snapshot(urls: list[str]) -> dict[str, Endpoint]:
    """``--endpoint`` URLs as a snapshot: each is its own key, always ready."""
    return {url: Endpoint(url, url.rstrip("/"), EndpointState.READY) for url in urls}
