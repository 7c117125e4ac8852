"""A model of Ollama replicas and of what routes requests to them (one replica, its
parameters and its deletion rank: ``scaler.simulate.replica``).

Each replica has ``parallel`` slots (OLLAMA_NUM_PARALLEL). Where a request waits
depends on the routing (``ROUTINGS``):

- ``random``: the seed's stack. The Service sends each request to a ready replica
  picked at random (kube-proxy's iptables mode); that pod's proxy admits it into a
  free slot, or queues it first-in first-out, or answers 503 when its queue holds
  ``max_queue`` requests.
- ``least``: per-pod queues as above, but each request goes to the ready replica with
  the fewest outstanding (active + queued) requests, ties broken by the seeded rng.
- ``shared``: ``scaler router``. One FIFO queue for the whole Deployment, bounded in
  total by ``router_max_queue`` (503 beyond it), and late binding: a request is bound
  to a replica only when a ready one has a free slot (the one with the fewest active
  requests, as the router's dispatcher picks), so a replica that becomes ready takes
  the oldest queued requests at once. The pods' proxies hold no queue.

With Poisson arrivals, unbounded queues and exponential service times, ``shared`` is
an M/M/c queue with c = pods x ``parallel`` (no slot idles while a request waits) and
``random`` an M/M/``parallel`` queue per pod (a random split of a Poisson stream is
Poisson); tests/test_simulate_theory.py holds both within 5 % of Erlang C.

A new replica serves only after ``cold_start`` seconds (pod start plus model load). A
scale-down removes the pods the ReplicaSet would, steered by the controller's
deletion costs: those not yet ready, then those holding the fewest requests. A removed
replica takes nothing new at once and finishes what it holds (the proxy's drain, with
Ollama stopped only after it), then disappears.

``capacity`` caps the pods the nodes can run (a draining pod still holds its place):
the others stay Pending, as on a full node, and are scheduled in creation order as
places free up, their cold start beginning then. Pending pods are deleted first.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from typing import Final, Literal

from scaler.simulate.replica import (
    DRAINING,
    PENDING,
    READY,
    STARTING,
    ModelParams,
    Replica,
    age_rank,
    deletion_rank,
)
from scaler.simulate.types import SimulationError

Routing = Literal["random", "least", "shared"]
ROUTINGS: Final[tuple[Routing, ...]] = ("shared", "least", "random")
# The hot path branches on these indexes into ROUTINGS, not on the names.
SHARED: Final = 0
LEAST: Final = 1
RANDOM: Final = 2


class Cluster:
    """The replicas of one policy's run, the routing in front of them, and the
    requests they serve.

    ``waits`` collects each served request's queue wait (seconds); ``rejected``
    counts 503s; ``queued`` counts requests waiting anywhere (the pods' queues or the
    router's ``backlog``). Events (completions, replicas becoming ready) are kept in
    one heap.
    """

    def __init__(
        self,
        params: ModelParams,
        replicas: int,
        *,
        seed: int,
        routing: str = "random",
        marks_idle: bool = True,
        holds: bool = False,
    ) -> None:
        """``marks_idle``: scaler marks the pods before a scale-down, so the ReplicaSet
        removes idle ones first; False for the Kubernetes HPA, which does not.
        ``holds``: behind shared routing, the router holds requests while no pod is
        ready (``--cold-start-wait``, for scale to zero) instead of answering 503;
        ``first_waits`` then collects the wait of the first request of each such
        period (the one that waits for a cold start)."""
        if routing not in ROUTINGS:
            raise SimulationError(f"unknown routing {routing!r}; valid: {', '.join(ROUTINGS)}")
        self.params = params
        self.routing = ROUTINGS.index(routing)
        self.rank = deletion_rank if marks_idle else age_rank
        self.bound = params.router_max_queue if self.routing == SHARED else params.max_queue
        self.backlog: deque[tuple[int, float]] = deque()  # the router's queue (shared)
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
        self.pending: list[Replica] = []  # unschedulable, oldest first
        self.holds = holds and self.routing == SHARED
        self.first_waits: list[float] = []
        for _ in range(replicas):
            self._add_replica(0.0, ready_at=0.0, serving=True)

    # -- scaling -------------------------------------------------------------------
    def scale_to(self, replicas: int, now: float) -> None:
        """Set the Deployment's replicas: create starting pods or remove pods.

        Removal follows the ReplicaSet's ranking: pods not yet ready go first, then
        (when scaler marks them) the ready pods holding the fewest requests, then the
        most recently ready.
        """
        while len(self.replicas) < replicas:
            self._add_replica(now, ready_at=now + self.params.cold_start)
        if len(self.replicas) > replicas:
            ranked = sorted(self.replicas, key=self.rank)
            for replica in ranked[: len(self.replicas) - replicas]:
                self._remove(replica, now)

    def _add_replica(self, now: float, *, ready_at: float, serving: bool = False) -> None:
        """``serving``: the replicas the run starts with. Any other becomes ready
        through an event, even with no cold start, so it takes the backlog as it does."""
        replica = Replica(f"ollama-{self.created}", now, ready_at, self.created)
        self.created += 1
        self.version += 1
        fits = self._has_room()
        self.replicas.append(replica)
        if not fits:
            replica.state = PENDING
            self.pending.append(replica)
        elif serving:
            replica.state = READY
            self.ready.append(replica)
        else:
            self._push(ready_at, -1, replica)

    def _remove(self, replica: Replica, now: float) -> None:
        self.version += 1
        self.replicas.remove(replica)
        if replica.state == PENDING:
            self.pending.remove(replica)
            replica.state = DRAINING
            return
        if replica.state == READY:
            self.ready.remove(replica)
        replica.state = DRAINING
        if replica.active or replica.queue:
            self.draining.append(replica)
        else:
            self._schedule(now)

    def _schedule(self, now: float) -> None:
        """Pending pods, oldest first, take the places that freed up; they start now."""
        while self.pending and self._has_room():
            replica = self.pending.pop(0)
            replica.state = STARTING
            replica.created = now  # its start time and CPU counter begin on the node
            replica.ready_at = now + self.params.cold_start
            self.version += 1
            self._push(replica.ready_at, -1, replica)

    def _has_room(self) -> bool:
        """Whether one more pod can be scheduled: running and draining pods hold places."""
        capacity = self.params.capacity
        running = len(self.replicas) - len(self.pending) + len(self.draining)
        return capacity is None or running < capacity

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
                if self.holds and len(self.ready) == 1 and self.backlog:
                    # The first pod after none: the oldest held request waited for it.
                    self.first_waits.append(at - self.backlog[0][1])
                # Late binding: the new replica takes the router's oldest requests now.
                while self.backlog and replica.active < self.params.parallel:
                    queued, arrived = self.backlog.popleft()
                    self.queued -= 1
                    self._start(replica, queued, arrived, at, service_times)
            return
        # The slot goes straight on to the next request, so it stays busy: the pod's
        # own queue first, else (shared routing) the router's head, unless draining.
        waiting = replica.queue
        if not waiting and replica.state == READY:
            waiting = self.backlog
        if waiting:
            queued, arrived = waiting.popleft()
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
                self._schedule(at)

    def arrive(self, request: int, at: float, service_times: list[float]) -> None:
        """A request reaches the Service (or the router) at ``at``."""
        if not self.ready and not self.holds:
            self.rejected += 1  # no pod ready: the Service and the router answer 503
            return
        routing = self.routing
        if routing == SHARED:
            # A non-empty backlog means no ready pod has a free slot: skip the search.
            free = None if self.backlog else self._free_replica()
            if free is not None:
                self._start(free, request, at, at, service_times)
                return
            if len(self.backlog) < self.bound:
                self.backlog.append((request, at))
                self.queued += 1
            else:
                self.rejected += 1
            return
        if routing == LEAST:
            replica = self._least_loaded()
        else:
            replica = self.ready[int(self.rng.random() * len(self.ready))]
        if replica.active < self.params.parallel:
            self._start(replica, request, at, at, service_times)
        elif len(replica.queue) < self.bound:
            replica.queue.append((request, at))
            self.queued += 1
        else:
            self.rejected += 1

    def _free_replica(self) -> Replica | None:
        """The ready replica with the fewest active requests, if it has a free slot;
        the first in order on ties, as the router's dispatcher picks."""
        best = None
        fewest = self.params.parallel
        for replica in self.ready:
            if replica.active < fewest:
                best = replica
                fewest = replica.active
                if fewest == 0:
                    break  # an idle pod: none can have fewer
        return best

    def _least_loaded(self) -> Replica:
        """The ready replica with the fewest outstanding requests (active + queued),
        ties broken at random; ``self.ready`` must not be empty."""
        ties: list[Replica] = []
        fewest = -1
        for replica in self.ready:
            load = replica.active + len(replica.queue)
            if load < fewest or fewest < 0:
                fewest = load
                ties = [replica]
            elif load == fewest:
                ties.append(replica)
        if len(ties) == 1:
            return ties[0]
        return ties[int(self.rng.random() * len(ties))]

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
        queues = [r.queue for r in self.replicas + self.draining] + [self.backlog]
        return [now - arrived for queue in queues for _, arrived in queue]
