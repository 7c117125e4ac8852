"""The pods the dispatcher binds requests to, as discovery last saw them.

A pod that leaves discovery's snapshot stays known until its last request of ours
ends, so ``release`` still finds it; a pod replaced under a reused name (a new
address) is retired with the requests it holds, and the new one takes the name at
once. The next request goes to the ready pod with the fewest of ours and a free slot.
"""

from __future__ import annotations

from scaler.router.endpoints import Endpoint, EndpointState, Snapshot
from scaler.router.waiting import Pod


class PodTable:
    """The pods by key, and the retired ones still holding requests. ``pods`` stays
    the same dict for the table's life: the dispatcher and the metrics read it."""

    def __init__(self) -> None:
        self.pods: dict[str, Pod] = {}
        self._retired: list[Pod] = []  # replaced under a reused name, still holding requests

    def update(self, snapshot: Snapshot) -> None:
        """Take discovery's whole new view of the pods. A pod that left the snapshot
        finishes what it holds and is forgotten after its last request."""
        for key, pod in list(self.pods.items()):
            if key not in snapshot:
                pod.present = False
                if pod.active == 0:
                    del self.pods[key]
        for key, endpoint in snapshot.items():
            self._merge(endpoint, self.pods.get(key))

    def _merge(self, endpoint: Endpoint, pod: Pod | None) -> None:
        if pod is None or pod.url != endpoint.url:  # a new pod (or a reused name)
            if pod is not None and pod.active:
                pod.present = False
                self._retired.append(pod)  # finishes its requests under its old address
            self.pods[endpoint.key] = Pod(endpoint.key, endpoint.url, endpoint.state)
            return
        pod.state = endpoint.state
        pod.present = True

    def forget_if_done(self, pod: Pod) -> None:
        """Drop ``pod`` once it has left the snapshot and holds none of our requests."""
        if pod.present or pod.active:
            return
        if self.pods.get(pod.key) is pod:
            del self.pods[pod.key]
        else:
            self._retired = [p for p in self._retired if p is not pod]

    def any_ready(self) -> bool:
        return any(pod.takes_new for pod in self.pods.values())

    def pods_by_state(self) -> dict[EndpointState, int]:
        counts = dict.fromkeys(EndpointState, 0)
        for pod in self.pods.values():
            if pod.present:
                counts[pod.state] += 1
        return counts

    def free_pod(self, now: float, parallel: int) -> Pod | None:
        """The ready pod with the fewest of our requests and a free slot (fewer than
        ``parallel`` of ours, not passed over at ``now``), if any."""
        best: Pod | None = None
        for pod in self.pods.values():
            if pod.active >= parallel or not pod.takes_new or pod.blocked_until > now:
                continue
            if best is None or pod.active < best.active:
                best = pod
        return best

    def least_busy(self) -> Pod | None:
        """A ready pod for a request outside the queue (model list, show, blobs)."""
        ready = [pod for pod in self.pods.values() if pod.takes_new]
        return min(ready, key=lambda pod: pod.active) if ready else None
