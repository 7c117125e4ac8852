"""Drawing requests from a rate: Poisson counts, arrival times and token counts."""

from __future__ import annotations

import random
from statistics import fmean, pvariance

import pytest

from scaler.simulate.sampling import (
    MAX_TOKENS,
    poisson_counts,
    trace_from_intervals,
    trace_from_rates,
)


@pytest.mark.parametrize(
    "mean",
    [
        pytest.param(0.3, id="inversion-small"),
        pytest.param(4.0, id="inversion"),
        pytest.param(25.0, id="ptrs"),
        pytest.param(5000.0, id="ptrs-large"),
    ],
)
def test_poisson_counts_have_the_poisson_mean_and_variance(mean: float) -> None:
    counts = poisson_counts(random.Random(11), [mean] * 20_000)
    # Standard error of the mean: sqrt(mean / 20,000); the bounds are > 5 of them.
    assert fmean(counts) == pytest.approx(mean, rel=0.04 if mean < 1 else 0.02)
    assert pvariance(counts) == pytest.approx(mean, rel=0.1)
    assert min(counts) >= 0


def test_poisson_counts_of_zero_or_negative_means_are_zero() -> None:
    assert poisson_counts(random.Random(1), [0.0, -1.0, 0.0]) == [0, 0, 0]


def test_requests_land_inside_their_interval_sorted() -> None:
    trace = trace_from_intervals(
        "t",
        starts=[0.0, 10.0, 20.0],
        widths=[10.0, 10.0, 5.0],
        counts=[3, 0, 4],
        rng=random.Random(2),
        duration=25.0,
    )
    arrivals = list(trace.arrivals)
    assert arrivals == sorted(arrivals)
    assert [a < 10 for a in arrivals] == [True] * 3 + [False] * 4
    assert all(20 <= a < 25 for a in arrivals[3:])


def test_an_arrival_rounded_up_to_the_end_stays_inside_the_trace() -> None:
    class AlmostOne(random.Random):
        def random(self) -> float:
            return 1.0 - 2**-53

    trace = trace_from_intervals(
        "t", starts=[1e9], widths=[1.0], counts=[2], rng=AlmostOne(), duration=1e9 + 1.0
    )
    assert max(trace.arrivals) < trace.duration


def test_tokens_follow_the_interval_mean_and_are_clipped() -> None:
    trace = trace_from_intervals(
        "t",
        starts=[0.0, 1.0, 2.0],
        widths=[1.0, 1.0, 1.0],
        counts=[5000, 5000, 10],
        rng=random.Random(3),
        duration=3.0,
        prompt_means=[100.0, 3000.0, 0.0],
        completion_means=[50.0, 50.0, 50.0],
    )
    prompt = list(trace.prompt_tokens)
    assert fmean(prompt[:5000]) == pytest.approx(100, rel=0.06)
    # Mean 3,000 is median 1,820 with sigma 1: 21% lie above 4,096 and are clipped
    # there, which brings the mean down to ~2,130.
    assert max(prompt[5000:10000]) == MAX_TOKENS
    assert 2030 <= fmean(prompt[5000:10000]) <= 2230
    assert prompt[10000:] == [1] * 10  # a mean of 0 tokens gives the minimum, 1
    assert fmean(trace.completion_tokens) == pytest.approx(50, rel=0.05)


def test_trace_from_rates_covers_one_step_per_rate() -> None:
    trace = trace_from_rates("r", [0.0, 2.0, 0.0], step=60.0, seed=4, burst_at=60.0)
    assert trace.duration == 180.0
    assert trace.burst_at == 60.0
    assert all(60 <= a < 120 for a in trace.arrivals)
    assert 80 <= len(trace.arrivals) <= 160  # Poisson(120)
