"""Stabilization windows: ``stabilizeRecommendationWithBehaviors``, with time passed in."""

from __future__ import annotations

from typing import NamedTuple

from scaler.policy.decision import Reason
from scaler.policy.history import Recommendation

_UP_MESSAGE = (
    "recent recommendations were lower than current one, applying the lowest recent recommendation"
)
_DOWN_MESSAGE = (
    "recent recommendations were higher than current one, "
    "applying the highest recent recommendation"
)


class Stabilized(NamedTuple):
    replicas: int
    reason: Reason
    message: str
    recommendations: tuple[Recommendation, ...]


def stabilize(
    recommendations: tuple[Recommendation, ...],
    *,
    desired: int,
    current: int,
    scale_up_window: float,
    scale_down_window: float,
    now: float,
) -> Stabilized:
    """Bound ``desired`` by the recommendations inside each window.

    As the HPA does: the scale-up limit is the lowest recommendation made after
    ``now - scale_up_window`` (and the new one), the scale-down limit the highest made
    after ``now - scale_down_window``. Starting from ``current``, the result is raised
    to the first and lowered to the second. A record exactly at a cutoff counts as
    neither inside the window nor outdated (Go's strict ``After``/``Before``). The new
    unstabilized recommendation overwrites the last record that is outside both
    windows, or is appended when there is none.
    """
    up_cutoff = now - scale_up_window
    down_cutoff = now - scale_down_window
    up_limit = desired
    down_limit = desired
    # Outside both windows means before the earlier cutoff; upstream reuses the last one.
    outdated_before = min(up_cutoff, down_cutoff)
    old_index = None
    # One pass, as upstream's loop: this runs on every decision, dozens of records long.
    for index, (replicas, at) in enumerate(recommendations):
        if at > up_cutoff and replicas < up_limit:
            up_limit = replicas
        if at > down_cutoff and replicas > down_limit:
            down_limit = replicas
        if at < outdated_before:
            old_index = index

    replicas = current
    if replicas < up_limit:
        replicas = up_limit
    if replicas > down_limit:
        replicas = down_limit

    new = Recommendation(desired, now)
    if old_index is None:
        stored = (*recommendations, new)
    else:
        stored = (*recommendations[:old_index], new, *recommendations[old_index + 1 :])

    if desired >= current:
        return Stabilized(replicas, Reason.SCALE_UP_STABILIZED, _UP_MESSAGE, stored)
    return Stabilized(replicas, Reason.SCALE_DOWN_STABILIZED, _DOWN_MESSAGE, stored)
