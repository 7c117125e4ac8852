"""A model of Ollama replicas behind a Kubernetes Service, each behind our proxy.

Each replica has ``parallel`` slots (OLLAMA_NUM_PARALLEL). The Service sends each
request to a ready replica picked at random (kube-proxy's iptables mode); the proxy
admits it into a free slot, or queues it first-in first-out, or answers 503 when its
queue holds ``max_queue`` requests. A new replica serves only after ``cold_start``
seconds (pod start plus model load). A replica removed by a scale-down leaves the
Service at once and finishes what it holds (a graceful drain), then disappears.

CPU follows from busy slots: a replica burns ``busy_cores`` while at least one slot
generates and ``idle_cores`` otherwise, and the model keeps the cumulative CPU seconds
per replica, as cAdvisor's ``container_cpu_usage_seconds_total`` does.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass

STARTING, READY, DRAINING = 0, 1, 2


@dataclass(frozen=True, slots=True)
class ModelParams:
    """The service's physical parameters. Seconds, tokens/s and CPU cores."""

    parallel: int = 1
    max_queue: int = 16
    cold_start: float = 30.0
    prompt_tokens_per_second: float = 100.0
    completion_tokens_per_second: float = 15.0
    cpu_request: float = 2.0
    busy_cores: float = 2.0
    idle_cores: float = 0.05


class Replica:
    """One pod: its slots, its proxy queue, and its CPU counter."""

    __slots__ = (
        "active",
        "busy_seconds",
        "busy_since",
        "created",
        "name",
        "queue",
        "ready_at",
        "state",
    )

    def __init__(self, name: str, created: float, ready_at: float) -> None:
        self.name = name
        self.created = created
        self.ready_at = ready_at
        self.state = READY if ready_at <= created else STARTING
        self.active = 0
        self.queue: deque[tuple[int, float]] = deque()
        self.busy_seconds = 0.0
        self.busy_since = 0.0

    def cpu_seconds(self, now: float, params: ModelParams) -> float:
        """Cumulative CPU seconds used up to ``now``."""
        busy = self.busy_seconds + (now - self.busy_since if self.active else 0.0)
        return params.idle_cores * (now - self.created) + params.busy_cores * busy


class Cluster:
    """The replicas of one policy's run and the requests they serve.

    ``waits`` collects each served request's queue wait (seconds); ``rejected``
    counts 503s. Events (completions, replicas becoming ready) are kept in one heap.
    """

    def __init__(self, params: ModelParams, replicas: int, *, seed: int) -> None:
        self.params = params
        self.rng = random.Random(seed)
        self.replicas: list[Replica] = []
        self.ready: list[Replica] = []
        self.draining: list[Replica] = []
        self.events: list[tuple[float, int, int, Replica]] = []
        self.sequence = 0
        self.created = 0
        self.waits: list[float] = []
        self.rejected = 0
        self.queued = 0
        self.in_flight = 0
        self.version = 0  # bumped whenever a pod appears, leaves or becomes ready
        self.replica_seconds = 0.0
        for _ in range(replicas):
            self._add_replica(0.0, ready_at=0.0)

    # -- scaling -------------------------------------------------------------------
    def scale_to(self, replicas: int, now: float) -> None:
        """Set the Deployment's replicas: create starting pods or remove pods.

        Removal follows the ReplicaSet's preference: pods not yet ready go first,
        then the most recently ready.
        """
        while len(self.replicas) < replicas:
            self._add_replica(now, ready_at=now + self.params.cold_start)
        if len(self.replicas) > replicas:
            ranked = sorted(self.replicas, key=lambda r: (r.state == READY, -r.ready_at))
            for replica in ranked[: len(self.replicas) - replicas]:
                self._remove(replica)

    def _add_replica(self, now: float, *, ready_at: float) -> None:
        replica = Replica(f"ollama-{self.created}", now, ready_at)
        self.created += 1
        self.version += 1
        self.replicas.append(replica)
        if replica.state == READY:
            self.ready.append(replica)
        else:
            self._push(ready_at, -1, replica)

    def _remove(self, replica: Replica) -> None:
        self.version += 1
        self.replicas.remove(replica)
        if replica.state == READY:
            self.ready.remove(replica)
        replica.state = DRAINING
        if replica.active or replica.queue:
            self.draining.append(replica)

    # -- events --------------------------------------------------------------------
    def _push(self, at: float, request: int, replica: Replica) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (at, self.sequence, request, replica))

    def next_event_time(self) -> float:
        return self.events[0][0] if self.events else float("inf")

    def run_event(self, service_times: list[float]) -> None:
        """Process the earliest event: a completion or a replica becoming ready."""
        at, _, request, replica = heapq.heappop(self.events)
        if request < 0:
            if replica.state == STARTING:
                replica.state = READY
                self.ready.append(replica)
                self.version += 1
            return
        if replica.queue:
            # The slot goes straight on to the next queued request: still busy.
            queued, arrived = replica.queue.popleft()
            self.queued -= 1
            self.waits.append(at - arrived)
            self._push(at + service_times[queued], queued, replica)
            return
        replica.active -= 1
        self.in_flight -= 1
        if replica.active == 0:
            replica.busy_seconds += at - replica.busy_since
            if replica.state == DRAINING and replica in self.draining:
                self.draining.remove(replica)

    def arrive(self, request: int, at: float, service_times: list[float]) -> None:
        """A request reaches the Service at ``at``."""
        if not self.ready:
            self.rejected += 1
            return
        replica = self.ready[int(self.rng.random() * len(self.ready))]
        if replica.active < self.params.parallel:
            self._start(replica, request, at, at, service_times)
        elif len(replica.queue) < self.params.max_queue:
            replica.queue.append((request, at))
            self.queued += 1
        else:
            self.rejected += 1

    def _start(
        self, replica: Replica, request: int, arrived: float, now: float, times: list[float]
    ) -> None:
        if replica.active == 0:
            replica.busy_since = now
        replica.active += 1
        self.in_flight += 1
        self.waits.append(now - arrived)
        self._push(now + times[request], request, replica)

    # -- observation ---------------------------------------------------------------
    def serving_counts(self) -> tuple[int, int]:
        """Requests (queued, in flight) at the pods in the Service: what reading every
        ready pod's proxy gives. Pods not yet ready hold none; draining ones are out."""
        queued, in_flight = self.queued, self.in_flight
        for replica in self.draining:
            queued -= len(replica.queue)
            in_flight -= replica.active
        return queued, in_flight

    def unserved_waits(self, now: float) -> list[float]:
        """Waits so far of requests still queued when the run ends."""
        return [now - arrived for r in self.replicas + self.draining for _, arrived in r.queue]
