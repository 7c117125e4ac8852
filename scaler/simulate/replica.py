"""One modelled Ollama pod: its parameters, its lifecycle, and the order pods are deleted in.

``model.Cluster`` holds many of these and routes requests to them; what belongs to a
single pod lives here, so the cluster reads as routing and scaling alone.

A pod is ``PENDING`` (no node has room), ``STARTING`` (scheduled, in its cold start),
``READY`` (in the Service, taking requests) or ``DRAINING`` (removed: it takes nothing
new and finishes what it holds).

CPU follows from busy slots: a replica burns ``busy_cores`` while at least one slot
generates and ``idle_cores`` otherwise, and the model keeps the cumulative CPU seconds
per replica, as cAdvisor's ``container_cpu_usage_seconds_total`` does.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

STARTING, READY, DRAINING, PENDING = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class ModelParams:
    """The service's physical parameters. Seconds, tokens/s and CPU cores."""

    parallel: int = 1
    max_queue: int = 16  # per pod, the proxies' bound (random and least routing)
    router_max_queue: int = 64  # in total, the router's bound (shared routing)
    cold_start: float = 30.0
    prompt_tokens_per_second: float = 100.0
    completion_tokens_per_second: float = 15.0
    # The ollama container's CPU request and limit in manifests/base/ollama.yaml (equal:
    # a generating pod uses its whole share and no more); a test keeps them equal.
    cpu_request: float = 0.4
    busy_cores: float = 0.4
    idle_cores: float = 0.05
    capacity: int | None = None  # pods the nodes can run; None: no limit


class Replica:
    """One pod: its slots, its proxy queue, and its CPU counter."""

    __slots__ = (
        "active",
        "busy_seconds",
        "busy_since",
        "created",
        "name",
        "number",
        "queue",
        "ready_at",
        "state",
    )

    def __init__(self, name: str, created: float, ready_at: float, number: int = 0) -> None:
        self.name = name
        self.created = created
        self.number = number  # creation order: the youngest has the highest
        self.ready_at = ready_at
        self.state = STARTING
        self.active = 0
        self.queue: deque[tuple[int, float]] = deque()
        self.busy_seconds = 0.0
        self.busy_since = 0.0

    def cpu_seconds(self, now: float, params: ModelParams) -> float:
        """Cumulative CPU seconds used up to ``now``: ``busy_cores`` while busy (the
        limit caps it there), ``idle_cores`` otherwise."""
        busy = self.busy_seconds + (now - self.busy_since if self.active else 0.0)
        idle = now - self.created - busy
        return params.idle_cores * idle + params.busy_cores * busy


def deletion_rank(replica: Replica) -> tuple[bool, bool, int, float, int]:
    """Lowest first: the order in which the ReplicaSet deletes (upstream
    ``ActivePodsWithRanks``: not on a node, not ready, then lower deletion cost, then
    more recently ready, then younger). A ready pod's cost is what it holds, as the
    controller marks it just before the scale-down; a starting pod holds nothing."""
    ready = replica.state == READY
    held = replica.active + len(replica.queue) if ready else 0
    return (replica.state != PENDING, ready, held, -replica.ready_at, -replica.number)


def age_rank(replica: Replica) -> tuple[bool, bool, float]:
    """The ReplicaSet's order with no deletion costs: not on a node, not ready, then
    most recently ready."""
    return (replica.state != PENDING, replica.state == READY, -replica.ready_at)
