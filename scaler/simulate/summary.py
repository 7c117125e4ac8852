"""A finished run's figures (``Summary``): its waits' mean and percentiles, its
replica-seconds and its reaction to a burst.

Computed once per policy after its run (``runner``), and the reaction again once the
burst is known (``side_by_side``): nothing here runs per simulated second.
"""

from __future__ import annotations

import math

from scaler.simulate.model import Cluster
from scaler.simulate.types import IdleFigures, PolicyTimeline, Summary, Trace


def summarize(
    cluster: Cluster,
    trace: Trace,
    timeline: PolicyTimeline,
    scale_ups: list[float],
    *,
    scale_events: int,
    burst_at: float | None,
    idle: bool,
) -> Summary:
    """The figures of a run that has reached the trace's end. ``idle``: scale to zero
    or push is in play, so the figures add ``IdleFigures``."""
    # A request still queued at the end counts with the wait it has had so far.
    waits = sorted(cluster.waits + cluster.unserved_waits(trace.duration))
    summary = Summary(
        requests=len(trace.arrivals),
        served=len(cluster.waits),
        rejected=cluster.rejected,
        wait_mean=math.fsum(waits) / len(waits) if waits else 0.0,
        wait_p50=_percentile(waits, 0.50),
        wait_p95=_percentile(waits, 0.95),
        wait_p99=_percentile(waits, 0.99),
        max_queue=max(timeline.queue, default=0),
        reaction=reaction_to(burst_at, scale_ups),
        replica_seconds=cluster.replica_seconds,
        scale_events=scale_events,
    )
    if idle:
        summary.idle = IdleFigures(
            first_waits=len(cluster.first_waits),
            first_wait_p95=_percentile(sorted(cluster.first_waits), 0.95),
        )
    return summary


def reaction_to(burst_at: float | None, scale_ups: list[float]) -> float | None:
    """Seconds from the burst to the first scale-up at or after it."""
    if burst_at is None:
        return None
    return next((t - burst_at for t in scale_ups if t >= burst_at), None)


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list; 0 for an empty one."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]
