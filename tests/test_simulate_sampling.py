"""Drawing requests from a rate: Poisson counts, arrival times and token counts."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from statistics import fmean, pvariance

import pytest

from scaler.simulate.sampling import (
    COMPLETION_MEDIAN,
    COMPLETION_SIGMA,
    MAX_TOKEN_SPREAD,
    MAX_TOKENS,
    PROMPT_MEDIAN,
    PROMPT_SIGMA,
    poisson_counts,
    trace_from_intervals,
    trace_from_rates,
)
from scaler.simulate.types import SimulationError


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


def _token_trace(
    spread: float, counts: int = 3000, **means: list[float]
) -> tuple[list[int], list[int]]:
    """Tokens of ``counts`` requests in each of two 1 s intervals."""
    trace = trace_from_intervals(
        "t",
        starts=[0.0, 1.0],
        widths=[1.0, 1.0],
        counts=[counts, counts],
        rng=random.Random(5),
        duration=2.0,
        token_spread=spread,
        **means,  # type: ignore[arg-type]
    )
    return list(trace.prompt_tokens), list(trace.completion_tokens)


def test_a_token_spread_of_zero_gives_every_request_exactly_its_interval_mean() -> None:
    prompt, completion = _token_trace(
        0.0, prompt_means=[100.0, 300.0], completion_means=[40.0, 135.0]
    )
    assert prompt == [100] * 3000 + [300] * 3000
    assert completion == [40] * 3000 + [135] * 3000


def test_without_interval_means_a_spread_of_zero_gives_the_default_distributions_mean() -> None:
    prompt, completion = _token_trace(0.0)
    # The defaults' means: median x exp(sigma^2 / 2), 250 e^0.5 and 200 e^0.32.
    assert set(prompt) == {round(PROMPT_MEDIAN * math.exp(PROMPT_SIGMA**2 / 2))} == {412}
    assert set(completion) == {round(COMPLETION_MEDIAN * math.exp(COMPLETION_SIGMA**2 / 2))}


@pytest.mark.parametrize(
    "spread", [pytest.param(0.5, id="narrower"), pytest.param(1.25, id="wider")]
)
def test_a_token_spread_scales_the_lognormal_sigma_and_keeps_the_mean(spread: float) -> None:
    prompt, _ = _token_trace(spread, prompt_means=[200.0, 200.0], completion_means=[50.0, 50.0])
    default, _ = _token_trace(spread)
    sigma = statistics.stdev(math.log(p) for p in prompt)
    assert sigma == pytest.approx(spread * PROMPT_SIGMA, rel=0.05)
    assert fmean(prompt) == pytest.approx(200, rel=0.08)
    assert fmean(default) == pytest.approx(PROMPT_MEDIAN * math.exp(PROMPT_SIGMA**2 / 2), rel=0.08)


def test_the_default_spread_is_one_and_draws_what_it_always_drew() -> None:
    # Pinned from before --token-spread existed: the default must not move.
    trace = trace_from_rates("r", [3.0] * 100, step=1.0, seed=9)
    assert trace == trace_from_rates("r", [3.0] * 100, step=1.0, seed=9, token_spread=1.0)
    assert (len(trace.arrivals), sum(trace.prompt_tokens), sum(trace.completion_tokens)) == (
        272,
        119_231,
        74_298,
    )
    prompt, completion = _token_trace(
        1.0, 50, prompt_means=[100.0, 300.0], completion_means=[40.0, 135.0]
    )
    assert (sum(prompt), sum(completion)) == (22_850, 9_924)


def test_arrivals_from_a_constant_rate_are_a_poisson_process() -> None:
    # Poisson arrivals at rate r: gaps are exponential with mean 1 / r (so their
    # coefficient of variation is 1) and the counts in disjoint windows are Poisson
    # (variance = mean). One long interval (a PTRS count) and many short ones
    # (inversion) must both give it.
    rate = 4.0
    long_row = trace_from_intervals(
        "t",
        starts=[0.0],
        widths=[20_000.0],
        counts=poisson_counts(random.Random(1), [rate * 20_000]),
        rng=random.Random(2),
        duration=20_000.0,
    )
    for trace in (long_row, trace_from_rates("r", [rate] * 20_000, step=1.0, seed=3)):
        arrivals = list(trace.arrivals)
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        mean = fmean(gaps)
        assert mean == pytest.approx(1 / rate, rel=0.01)
        assert statistics.pstdev(gaps) / mean == pytest.approx(1.0, abs=0.02)
        # Kolmogorov-Smirnov distance to Exp(rate): 1.63 / sqrt(n) is the 1 % critical value.
        ordered = sorted(gaps)
        n = len(ordered)
        distance = max(
            max((i + 1) / n - (1 - math.exp(-rate * g)), (1 - math.exp(-rate * g)) - i / n)
            for i, g in enumerate(ordered)
        )
        assert distance < 1.63 / math.sqrt(n)
        windows = [0] * 2000  # 10 s windows
        for a in arrivals:
            windows[int(a // 10)] += 1
        assert pvariance(windows) / fmean(windows) == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("spread", [-0.1, math.nan, MAX_TOKEN_SPREAD + 0.5])
def test_a_token_spread_out_of_range_is_refused(spread: float) -> None:
    with pytest.raises(SimulationError, match="token spread"):
        trace_from_rates("r", [1.0], step=1.0, seed=1, token_spread=spread)
