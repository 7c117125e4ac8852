"""What the policy remembers between decisions, as plain immutable data.

The HPA keeps three maps on its controller (``recommendations``, ``scaleUpEvents``,
``scaleDownEvents``) and mutates them under locks. Here the same lists are values:
passed into a decision and returned from it, so a test can set up any history.
Timestamps are seconds on the caller's clock, the same clock as ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple


class Recommendation(NamedTuple):
    """``timestampedRecommendation``: an unstabilized replica count and when it was made.

    A named tuple rather than a dataclass: the stabilization window scans dozens of
    these on every decision, and tuples unpack fastest.
    """

    replicas: int
    timestamp: float


class ScaleEvent(NamedTuple):
    """``timestampedScaleEvent``: a change of ``replica_change`` pods (always > 0)."""

    replica_change: int
    timestamp: float
    outdated: bool = False


@dataclass(frozen=True, slots=True)
class History:
    """One target's policy history.

    ``recommendations`` is ``None`` until the first decision, which seeds it with the
    current replica count (``recordInitialRecommendation``): a fresh controller never
    scales down before one stabilization window has passed.
    """

    recommendations: tuple[Recommendation, ...] | None = None
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()

    def with_initial_recommendation(self, current_replicas: int, now: float) -> History:
        """``recordInitialRecommendation``: seed the list only if it was never set."""
        if self.recommendations is not None:
            return self
        return replace(self, recommendations=(Recommendation(current_replicas, now),))


def store_event(
    events: tuple[ScaleEvent, ...],
    *,
    replica_change: int,
    longest_policy_period: int,
    now: float,
) -> tuple[ScaleEvent, ...]:
    """``storeScaleEvent`` for one direction.

    Events older than the longest policy period are marked outdated
    (``markScaleEventsOutdated``); the last outdated one is overwritten by the new
    event, otherwise the new event is appended. The list stays bounded this way.
    """
    cutoff = now - longest_policy_period
    marked = tuple(
        e._replace(outdated=True) if e.timestamp < cutoff and not e.outdated else e for e in events
    )
    new_event = ScaleEvent(replica_change, now)
    reuse = None
    for index, event in enumerate(marked):
        if event.outdated:
            reuse = index
    if reuse is None:
        return (*marked, new_event)
    return (*marked[:reuse], new_event, *marked[reuse + 1 :])
