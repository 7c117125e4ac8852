"""Stabilization windows: ``stabilizeRecommendationWithBehaviors``, with time passed in."""

from __future__ import annotations

from typing import NamedTuple

from scaler.policy.decision import Reason
from scaler.policy.history import Recommendation

_UP_MESSAGE = (
    "recent recommendations were lower than current one, applying the lowest recent recommendation"
)
DOWN_MESSAGE = (
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
    # Outside both windows means before the earlier cutoff; upstream reuses the last one.
    stored = _store(recommendations, Recommendation(desired, now), min(up_cutoff, down_cutoff))
    # Upstream computes both limits, then raises ``current`` to the scale-up limit and
    # lowers it to the scale-down limit. The scale-up limit is at most ``desired`` and
    # the scale-down limit at least ``desired``, so only one window can move the
    # answer away from ``current``, and none when ``desired == current``.
    if desired == current:
        return Stabilized(current, Reason.SCALE_UP_STABILIZED, _UP_MESSAGE, stored)
    replicas = desired
    if desired > current:
        # The lowest recommendation in the scale-up window, but never below current.
        for count, at in recommendations:
            if at > up_cutoff and count < replicas:
                if count <= current:
                    replicas = current
                    break
                replicas = count
        return Stabilized(replicas, Reason.SCALE_UP_STABILIZED, _UP_MESSAGE, stored)
    # The highest recommendation in the scale-down window, but never above current.
    for count, at in recommendations:
        if at > down_cutoff and count > replicas:
            if count >= current:
                replicas = current
                break
            replicas = count
    return Stabilized(replicas, Reason.SCALE_DOWN_STABILIZED, DOWN_MESSAGE, stored)


def _store(
    recommendations: tuple[Recommendation, ...], new: Recommendation, outdated_before: float
) -> tuple[Recommendation, ...]:
    """Overwrite the last record made before ``outdated_before`` with ``new``, or
    append ``new`` when there is none, as upstream's loop does (it remembers the last
    outdated index it passes; searching backwards finds it sooner)."""
    for index in range(len(recommendations) - 1, -1, -1):
        if recommendations[index][1] < outdated_before:
            return (*recommendations[:index], new, *recommendations[index + 1 :])
    return (*recommendations, new)
