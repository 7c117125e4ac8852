"""The built-in scenarios: deterministic for a seed, and shaped as their descriptions say.

Counts below are Poisson; each bound sits at least 3.5 standard deviations from the
expected count, and the seeds are fixed, so the checks cannot flake.
"""

from __future__ import annotations

from statistics import median

import pytest

from scaler.simulate.sampling import MAX_TOKENS, MIN_TOKENS
from scaler.simulate.scenarios import (
    DEFAULT_SCENARIO,
    SCENARIOS,
    build_scenario,
    rate_at,
    scenario_rates,
)
from scaler.simulate.types import SimulationError, Trace

SEEDS = [0, 1, 2, 3, 4]
HOUR = 3600.0


def count(trace: Trace, start: float, end: float) -> int:
    """Requests arriving in [start, end) seconds."""
    return sum(1 for t in trace.arrivals if start <= t < end)


def test_the_default_is_burst_and_every_scenario_has_a_one_line_description() -> None:
    assert DEFAULT_SCENARIO == "burst"
    assert list(SCENARIOS) == ["burst", "ramp", "diurnal", "spikes"]
    for description in SCENARIOS.values():
        assert description
        assert "\n" not in description


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_same_seed_gives_the_same_trace(name: str) -> None:
    assert build_scenario(name, seed=7) == build_scenario(name, seed=7)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_different_seeds_give_different_requests_on_the_same_curve(name: str) -> None:
    a, b = build_scenario(name, seed=1), build_scenario(name, seed=2)
    assert a.arrivals != b.arrivals
    assert a.prompt_tokens != b.prompt_tokens
    assert (a.duration, a.burst_at) == (b.duration, b.burst_at)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_arrivals_are_sorted_inside_the_trace_and_tokens_in_range(name: str) -> None:
    trace = build_scenario(name, seed=3)
    assert trace.name == name
    arrivals = list(trace.arrivals)
    assert arrivals == sorted(arrivals)
    assert arrivals[0] >= 0 and arrivals[-1] < trace.duration
    assert len(trace.prompt_tokens) == len(trace.completion_tokens) == len(arrivals)
    for tokens in (trace.prompt_tokens, trace.completion_tokens):
        assert min(tokens) >= MIN_TOKENS and max(tokens) <= MAX_TOKENS


def test_tokens_are_right_skewed_around_the_chat_medians() -> None:
    trace = build_scenario("diurnal", seed=5)  # ~10,000 requests
    prompt, completion = list(trace.prompt_tokens), list(trace.completion_tokens)
    assert 235 <= median(prompt) <= 265
    assert 188 <= median(completion) <= 212
    # Right skew: the mean sits well above the median, a few requests are long.
    assert sum(prompt) / len(prompt) > 1.4 * median(prompt)
    assert max(prompt) > 2000


@pytest.mark.parametrize("seed", SEEDS)
def test_burst_is_quiet_then_a_crowd_then_quiet(seed: int) -> None:
    trace = build_scenario("burst", seed=seed)
    assert trace.duration == 35 * 60
    assert trace.burst_at == 600
    # 10 min at 1/min (expect 10), 10 min at 0.4/s (expect 240), 15 min at 1/min (15).
    assert count(trace, 0, 600) <= 25
    assert 185 <= count(trace, 600, 1200) <= 295
    assert count(trace, 1200, 2100) <= 32


def test_burst_rate_steps_at_the_crowd() -> None:
    rates = scenario_rates("burst")
    assert len(rates) == 2100
    assert rates[599] == pytest.approx(1 / 60)
    assert rates[600] == rates[1199] == pytest.approx(0.4)
    assert rates[1200] == pytest.approx(1 / 60)


@pytest.mark.parametrize("seed", SEEDS)
def test_ramp_rises_holds_and_falls(seed: int) -> None:
    trace = build_scenario("ramp", seed=seed)
    assert trace.burst_at == 300
    rise_start, rise_end = count(trace, 300, 900), count(trace, 1500, 2100)
    hold = count(trace, 2100, 3000)  # 15 min at 0.8/s: expect 720
    assert rise_start < rise_end
    assert 625 <= hold <= 815
    assert count(trace, 3900, 4200) <= 20  # quiet again: expect 5


@pytest.mark.parametrize("seed", SEEDS)
def test_diurnal_is_near_zero_at_night_and_busy_at_noon(seed: int) -> None:
    trace = build_scenario("diurnal", seed=seed)
    assert trace.duration == 86_400
    assert count(trace, 2 * HOUR, 4 * HOUR) <= 30  # 0.002/s: expect 14
    assert 960 <= count(trace, 10 * HOUR, 11 * HOUR) <= 1200  # 0.3/s: expect 1,080
    lunch = count(trace, 12.25 * HOUR, 12.75 * HOUR)  # 0.15/s: expect 270
    morning = count(trace, 10 * HOUR, 10.5 * HOUR)  # 0.3/s: expect 540
    assert lunch < 0.7 * morning


def test_diurnal_curve_has_a_morning_rise_and_an_evening_tail() -> None:
    rates = scenario_rates("diurnal")
    at = [rates[int(hour * HOUR)] for hour in (3, 7, 8, 10, 12.5, 15, 19, 23)]
    night, early, morning, peak, lunch, afternoon, evening, late = at
    assert night < early < morning < peak
    assert lunch < peak and afternoon == pytest.approx(peak)
    assert late < evening < afternoon


@pytest.mark.parametrize("seed", SEEDS)
def test_spikes_are_short_and_sharp_over_a_low_base(seed: int) -> None:
    trace = build_scenario("spikes", seed=seed)
    assert trace.duration == HOUR
    assert trace.burst_at == 300
    assert count(trace, 0, 300) <= 18  # 0.02/s: expect 6
    assert 38 <= count(trace, 300, 345) <= 100  # first spike, 1.5/s for 45 s: expect 67.5
    assert 35 <= count(trace, 900, 930) <= 88  # 2/s for 30 s: expect 60


def test_rate_between_knots_is_linear_and_a_step_takes_the_later_knot() -> None:
    knots = ((0.0, 0.0), (10.0, 1.0), (10.0, 5.0), (20.0, 5.0))
    assert rate_at(knots, 2.5) == 0.25
    assert rate_at(knots, 10.0) == 5.0
    assert rate_at(knots, 25.0) == 5.0


def test_an_unknown_scenario_names_the_valid_ones() -> None:
    with pytest.raises(SimulationError) as error:
        build_scenario("bursty", seed=1)
    assert str(error.value) == (
        "unknown scenario 'bursty'; valid scenarios: burst, ramp, diurnal, spikes"
    )
