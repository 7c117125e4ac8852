"""``stabilize`` against upstream's loop written out plainly, on random histories.

The engine's version takes shortcuts (when the desired count equals the current one,
when a record in the window already pins the current count); this checks that
they give exactly what ``stabilizeRecommendationWithBehaviors`` gives, stored list
included.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.policy import Reason, Recommendation
from scaler.policy.stabilization import stabilize


def upstream(
    recommendations: tuple[Recommendation, ...],
    desired: int,
    current: int,
    up_window: float,
    down_window: float,
    now: float,
) -> tuple[int, Reason, tuple[Recommendation, ...]]:
    """``stabilizeRecommendationWithBehaviors``, line by line."""
    up_cutoff = now - up_window
    down_cutoff = now - down_window
    up_recommendation = desired
    down_recommendation = desired
    old_index = None
    for index, (replicas, at) in enumerate(recommendations):
        if at > up_cutoff:
            up_recommendation = min(up_recommendation, replicas)
        if at > down_cutoff:
            down_recommendation = max(down_recommendation, replicas)
        if at < min(up_cutoff, down_cutoff):
            old_index = index
    recommendation = current
    if recommendation < up_recommendation:
        recommendation = up_recommendation
    if recommendation > down_recommendation:
        recommendation = down_recommendation
    stored = list(recommendations)
    if old_index is None:
        stored.append(Recommendation(desired, now))
    else:
        stored[old_index] = Recommendation(desired, now)
    reason = Reason.SCALE_UP_STABILIZED if desired >= current else Reason.SCALE_DOWN_STABILIZED
    return recommendation, reason, tuple(stored)


_records = st.lists(
    st.builds(
        Recommendation,
        st.integers(min_value=0, max_value=12),
        # Often exactly at a window's cutoff or next to it; a few from the future.
        st.one_of(
            st.sampled_from([-301, -300, -299, -61, -60, -59, -16, -15, -14, -1, 0, 1]),
            st.integers(min_value=-400, max_value=10),
        ).map(float),
    ),
    max_size=40,
).map(tuple)


@settings(max_examples=2000, deadline=None)
@given(
    records=_records,
    desired=st.integers(min_value=0, max_value=12),
    current=st.integers(min_value=0, max_value=12),
    up_window=st.sampled_from([0.0, 15.0, 60.0, 300.0]),
    down_window=st.sampled_from([0.0, 15.0, 60.0, 300.0]),
)
def test_stabilize_is_upstreams_loop(
    records: tuple[Recommendation, ...],
    desired: int,
    current: int,
    up_window: float,
    down_window: float,
) -> None:
    result = stabilize(
        records,
        desired=desired,
        current=current,
        scale_up_window=up_window,
        scale_down_window=down_window,
        now=0.0,
    )
    replicas, reason, stored = upstream(records, desired, current, up_window, down_window, 0.0)
    assert (result.replicas, result.reason, result.recommendations) == (replicas, reason, stored)
