"""Built-in load scenarios: chat traffic against a small self-hosted chatbot.

Each scenario is a request rate (requests/s) drawn as a piecewise-linear curve through
a few knots; a step change is two knots at the same time. The rate is sampled at the
middle of every second and each second gets Poisson arrivals of that rate (a
non-homogeneous Poisson process), with lognormal chat token counts (see
``sampling``). The curve is fixed; the seed only picks the requests, so two seeds
give the same shape with different requests, and one seed always the same trace.

``burst_at`` is where the load first rises (the crowd, the ramp, the morning, the
first spike): the runner measures each policy's reaction time from there.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from scaler.simulate.sampling import trace_from_rates
from scaler.simulate.types import SimulationError, Trace

MINUTE = 60.0
HOUR = 3600.0
QUIET = 1.0 / MINUTE
"""Background rate between bursts, requests/s: about one chat message a minute."""


@dataclass(frozen=True, slots=True)
class _Shape:
    description: str
    duration: float
    """Seconds; a whole number so every second is sampled."""
    knots: tuple[tuple[float, float], ...]
    """(time s, rate requests/s), time non-decreasing, first at 0, last at duration."""
    burst_at: float


def _spike_knots() -> tuple[tuple[float, float], ...]:
    base = 0.02
    # (start s, length s, rate req/s): one spike about every 10 minutes.
    spikes = [(300, 45, 1.5), (900, 30, 2.0), (1500, 60, 1.0), (2100, 40, 1.8), (2700, 50, 1.2)]
    knots = [(0.0, base)]
    for start, length, rate in spikes:
        knots += [(start, base), (start, rate), (start + length, rate), (start + length, base)]
    knots.append((HOUR, base))
    return tuple((float(t), r) for t, r in knots)


_SHAPES: dict[str, _Shape] = {
    "burst": _Shape(
        "10 min quiet (~1 req/min), a crowd of chat users for 10 min (~0.4 req/s), 15 min quiet",
        35 * MINUTE,
        (
            (0.0, QUIET),
            (10 * MINUTE, QUIET),
            (10 * MINUTE, 0.4),
            (20 * MINUTE, 0.4),
            (20 * MINUTE, QUIET),
            (35 * MINUTE, QUIET),
        ),
        burst_at=10 * MINUTE,
    ),
    "ramp": _Shape(
        "5 min quiet, a linear rise to ~0.8 req/s over 30 min, 15 min hold, "
        "15 min fall, 5 min quiet",
        70 * MINUTE,
        (
            (0.0, QUIET),
            (5 * MINUTE, QUIET),
            (35 * MINUTE, 0.8),
            (50 * MINUTE, 0.8),
            (65 * MINUTE, QUIET),
            (70 * MINUTE, QUIET),
        ),
        burst_at=5 * MINUTE,
    ),
    "diurnal": _Shape(
        "one day of office traffic: near zero at night, morning rise, "
        "peak ~0.3 req/s 9:00-17:00 with a lunch dip, evening tail",
        24 * HOUR,
        tuple(
            (hour * HOUR, rate)
            for hour, rate in (
                (0, 0.002),
                (6, 0.002),
                (7.5, 0.05),
                (9, 0.3),
                (12, 0.3),
                (12.25, 0.15),
                (12.75, 0.15),
                (13, 0.3),
                (17, 0.3),
                (18, 0.1),
                (20, 0.03),
                (22, 0.005),
                (24, 0.002),
            )
        ),
        burst_at=6 * HOUR,
    ),
    "spikes": _Shape(
        "1 h at ~1 req/min with a 30-60 s spike of 1-2 req/s about every 10 min",
        HOUR,
        _spike_knots(),
        burst_at=300.0,
    ),
}

SCENARIOS: Mapping[str, str] = MappingProxyType(
    {name: shape.description for name, shape in _SHAPES.items()}
)
"""Scenario name -> one-line description, for ``scaler simulate --help`` and docs."""
DEFAULT_SCENARIO = "burst"


def rate_at(knots: Sequence[tuple[float, float]], t: float) -> float:
    """The rate (requests/s) at ``t`` seconds, linear between knots.

    At a step (two knots at one time) the later knot wins; we only sample mid-second,
    never exactly on a knot, so this choice does not matter in practice.
    """
    i = bisect_right(knots, t, key=lambda knot: knot[0])
    if i == 0:
        return knots[0][1]
    if i == len(knots):
        return knots[-1][1]
    (t0, r0), (t1, r1) = knots[i - 1], knots[i]
    return r0 + (r1 - r0) * (t - t0) / (t1 - t0)


def scenario_rates(name: str) -> list[float]:
    """The scenario's rate for each whole second, requests/s (sampled mid-second)."""
    shape = _shape(name)
    return [rate_at(shape.knots, s + 0.5) for s in range(int(shape.duration))]


def build_scenario(name: str, *, seed: int, token_spread: float = 1.0) -> Trace:
    """The trace of the built-in scenario ``name``; the same seed gives the same trace.
    ``token_spread``: as in ``sampling.trace_from_intervals``."""
    shape = _shape(name)
    rates = scenario_rates(name)
    return trace_from_rates(
        name, rates, step=1.0, seed=seed, burst_at=shape.burst_at, token_spread=token_spread
    )


def _shape(name: str) -> _Shape:
    try:
        return _SHAPES[name]
    except KeyError:
        valid = ", ".join(_SHAPES)
        raise SimulationError(f"unknown scenario {name!r}; valid scenarios: {valid}") from None
