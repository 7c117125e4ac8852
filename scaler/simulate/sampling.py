"""Turn a request rate into requests: Poisson arrival counts, arrival times and tokens.

Shared by the built-in scenarios and the CSV and Prometheus traces, so every source
draws requests the same way. All randomness comes from one ``random.Random(seed)``
per trace (never the global generator), so a trace is a pure function of its inputs.

Tokens per request follow a lognormal distribution, as chat traffic does: most
prompts and answers are short, a few are long. Defaults: prompt median 250 tokens,
completion median 200, both clipped to [1, 4096]. To keep a 7-day trace fast to
build (~600,000 requests), a draw picks one of 4,096 equal-probability quantiles of
the distribution instead of calling ``random.gauss``: one ``getrandbits(12)`` per
draw, several times faster, and indistinguishable for a load model (only the
tails beyond 3.5 standard deviations are cut).

``token_spread`` scales both sigmas (``--token-spread``): 1, the default, is chat
traffic as above; 0 gives every request exactly the mean (the interval's, or the
default distribution's: 412 prompt and 275 completion tokens), which with
exponential service times makes a run an M/M/c queue; between, a narrower lognormal
with the same mean. Token counts are whole numbers, so a mean is rounded.
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Iterable, Sequence
from functools import cache
from itertools import chain, repeat
from operator import add, mul
from statistics import NormalDist

from scaler.simulate.types import SimulationError, Trace

MIN_TOKENS = 1
MAX_TOKENS = 4096
PROMPT_MEDIAN = 250.0
"""Default prompt length, tokens: a question plus some conversation history."""
PROMPT_SIGMA = 1.0
"""Spread of ln(prompt tokens): p99 is about 10x the median (~2,500 tokens)."""
COMPLETION_MEDIAN = 200.0
"""Default answer length, tokens."""
COMPLETION_SIGMA = 0.8
"""Spread of ln(completion tokens): p99 is about 6x the median (~1,300 tokens)."""
MAX_TOKEN_SPREAD = 3.0
"""Beyond 3x the sigmas (p99 ~1,000x the median) the clip at 4,096 tokens, not the
spread, would shape the draws and the mean would no longer hold."""

_QUANTILE_BITS = 12
_QUANTILES = 1 << _QUANTILE_BITS
_SMALL_MEAN = 10.0


@cache
def _lognormal_factors(sigma: float) -> tuple[float, ...]:
    """``exp(sigma * z)`` at the midpoints of 4,096 equal-probability bins of N(0, 1)."""
    normal = NormalDist()
    return tuple(
        math.exp(sigma * normal.inv_cdf((i + 0.5) / _QUANTILES)) for i in range(_QUANTILES)
    )


@cache
def _mean_factors(sigma: float) -> tuple[float, ...]:
    """The quantile factors that turn an interval's mean tokens into a draw:
    ``exp(sigma * z - sigma^2 / 2)``, since a lognormal's mean is its median times
    ``exp(sigma^2 / 2)``."""
    shrink = math.exp(-sigma * sigma / 2)
    return tuple(f * shrink for f in _lognormal_factors(sigma))


@cache
def _default_tokens(median: float, sigma: float, spread: float) -> tuple[int, ...]:
    """The 4,096 possible token counts of a request, for intervals without a mean.

    A spread other than 1 keeps the default distribution's mean, not its median."""
    if spread == 1.0:  # the defaults as they have always been drawn
        scale, factors = median, _lognormal_factors(sigma)
    else:
        scale, factors = median * math.exp(sigma * sigma / 2), _mean_factors(sigma * spread)
    return tuple(min(MAX_TOKENS, max(MIN_TOKENS, round(scale * f))) for f in factors)


def _poisson_ptrs(rng: random.Random, mean: float) -> int:
    """Hörmann's PTRS transformed rejection (1993), as numpy uses for means >= 10."""
    slam = math.sqrt(mean)
    loglam = math.log(mean)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        accept = math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b)
        if accept <= -mean + k * loglam - math.lgamma(k + 1):
            return k


def poisson_counts(rng: random.Random, means: Iterable[float]) -> list[int]:
    """A Poisson-distributed count for each mean (requests in one interval), in order.

    Means below 10 use inversion (one ``random()``, about mean + 1 steps); larger ones
    PTRS, so an hourly CSV row with 50,000 requests costs the same as one with 5. The
    loop is written out because a 7-day trace at 1 s resolution has 604,800 intervals.
    """
    rand = rng.random
    exp = math.exp
    counts: list[int] = []
    append = counts.append
    for mean in means:
        if mean <= 0.0:
            append(0)
        elif mean < _SMALL_MEAN:
            u = rand()
            p = exp(-mean)
            cumulative = p
            k = 0
            while u > cumulative and p > 0.0:
                k += 1
                p *= mean / k
                cumulative += p
            append(k)
        else:
            append(_poisson_ptrs(rng, mean))
    return counts


def trace_from_intervals(
    name: str,
    *,
    starts: Sequence[float],
    widths: Sequence[float],
    counts: Sequence[int],
    rng: random.Random,
    duration: float,
    prompt_means: Sequence[float] | None = None,
    completion_means: Sequence[float] | None = None,
    burst_at: float | None = None,
    token_spread: float = 1.0,
) -> Trace:
    """A trace with ``counts[i]`` requests uniform in ``[starts[i], starts[i] + widths[i])``.

    Intervals must be in time order and not overlap; ``duration`` (s) must cover them.
    ``prompt_means``/``completion_means``: mean tokens per request in each interval,
    ``None`` for the defaults; the lognormal keeps its spread and is scaled so its mean
    (before clipping) is the one given. ``token_spread``: the factor on both sigmas,
    in ``[0, MAX_TOKEN_SPREAD]`` (0: every request gets the mean).

    Everything is drawn in bulk with ``map`` over whole columns: per-interval Python
    calls would cost more than a second on a 7-day trace. Offsets are drawn interval
    by interval, then all arrivals are sorted once; as intervals do not overlap, the
    sort only reorders requests inside an interval, whose tokens are drawn alike.
    """
    # The interval of each request, e.g. counts [2, 0, 1] -> [0, 0, 2].
    interval = list(chain.from_iterable(map(repeat, range(len(counts)), counts)))
    total = len(interval)
    rand = rng.random
    offsets = [rand() for _ in range(total)]
    row_starts = map(starts.__getitem__, interval)
    row_widths = map(widths.__getitem__, interval)
    arrivals = array("d", sorted(map(add, row_starts, map(mul, row_widths, offsets))))
    # start + width * random() can round up to the interval's end; keep [0, duration).
    i = total - 1
    while i >= 0 and arrivals[i] >= duration:
        arrivals[i] = math.nextafter(duration, 0.0)
        i -= 1
    if not 0.0 <= token_spread <= MAX_TOKEN_SPREAD:
        raise SimulationError(f"token spread {token_spread:g} is outside 0..{MAX_TOKEN_SPREAD:g}")
    prompt = _tokens(rng, interval, prompt_means, (PROMPT_MEDIAN, PROMPT_SIGMA, token_spread))
    completion = _tokens(
        rng, interval, completion_means, (COMPLETION_MEDIAN, COMPLETION_SIGMA, token_spread)
    )
    return Trace(
        name=name,
        duration=duration,
        arrivals=arrivals,
        prompt_tokens=prompt,
        completion_tokens=completion,
        burst_at=burst_at,
    )


def _tokens(
    rng: random.Random,
    interval: list[int],
    means: Sequence[float] | None,
    shape: tuple[float, float, float],
) -> array[int]:
    """One token count per request: a random quantile of the lognormal (``shape``: the
    default median, sigma and the spread on it), scaled to the interval's mean when
    one is given, rounded and clipped to [1, 4096].

    The quantiles are drawn whatever the spread, so a seed gives the same arrivals
    and the same order of draws at every spread."""
    median, sigma, spread = shape
    quantiles = map(rng.getrandbits, repeat(_QUANTILE_BITS, len(interval)))
    if means is None:
        return array("i", map(_default_tokens(median, sigma, spread).__getitem__, quantiles))
    if not interval:
        return array("i")
    # For a lognormal, mean = median * exp(sigma^2 / 2).
    factors = _mean_factors(sigma * spread)
    tokens = map(
        round, map(mul, map(means.__getitem__, interval), map(factors.__getitem__, quantiles))
    )
    # Clip only when some interval's mean can reach a bound: each pass costs ~0.1 s
    # on a 7-day trace.
    lowest, highest = min(means), max(means)
    if lowest * factors[0] <= 0.5:
        tokens = map(max, repeat(MIN_TOKENS), tokens)
    if highest * factors[-1] >= MAX_TOKENS + 0.5:
        tokens = map(min, repeat(MAX_TOKENS), tokens)
    return array("i", tokens)


def trace_from_rates(
    name: str,
    rates: Sequence[float],
    *,
    step: float,
    seed: int,
    burst_at: float | None = None,
    token_spread: float = 1.0,
) -> Trace:
    """A trace whose interval ``i`` covers ``[i * step, (i + 1) * step)`` seconds and
    receives Poisson(``rates[i] * step``) requests (``rates`` in requests/s)."""
    rng = random.Random(seed)
    n = len(rates)
    return trace_from_intervals(
        name,
        starts=[i * step for i in range(n)],
        widths=[step] * n,
        counts=poisson_counts(rng, [rate * step for rate in rates]),
        rng=rng,
        duration=n * step,
        burst_at=burst_at,
        token_spread=token_spread,
    )
