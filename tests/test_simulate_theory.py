"""The simulator's queue model against queueing theory (issue 13, point 11).

With Poisson arrivals, every request given exactly the mean tokens
(``--token-spread 0``) and exponential service times around that mean
(``--service-time exponential``), a ``static:N`` run with an unbounded queue is a
textbook queue, and its waits must match the formulas:

- ``--routing shared`` (the router): one FIFO queue in front of every slot, bound to a
  slot as soon as one frees, so pods x slots servers: M/M/c, Erlang C.
- ``--routing random`` (the Service): each request goes to a pod picked at random, so
  each pod sees Poisson arrivals at 1/N of the rate and queues them on its own: M/M/s
  per pod with s = its slots (M/M/1 with one slot).

For M/M/c with arrival rate lambda and service rate mu, the probability of waiting is
Erlang's C formula, and the wait is 0 with probability 1 - C, else exponential with
rate c mu - lambda: P(W > t) = C exp(-(c mu - lambda) t). So the mean wait is
C / (c mu - lambda) and the p95 is ln(C / 0.05) / (c mu - lambda) when C > 0.05.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from scaler.cli import main

MU = 0.5
"""Service rate per slot, 1/s: 100 prompt tokens at 100 tokens/s plus 15 completion
tokens at 15 tokens/s (``--hardware cpu``) make a mean of exactly 2 s."""
DURATION = 1_000_000.0
"""Simulated seconds: ~1.5 million requests, where one run's mean and p95 wait
scatter by about 1 % around the theory (measured over ten seeds), so 5 % is a
margin of five standard deviations, at ~3 s of CPU per run."""
TOLERANCE = 0.05


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with ``offered`` = lambda / mu."""
    term, below = 1.0, 1.0  # a^k / k!, and its sum over k < c
    for k in range(1, servers):
        term *= offered / k
        below += term
    top = term * offered / (servers - offered)  # a^c / c! x c / (c - a)
    return top / (below + top)


def mmc_wait(servers: int, arrival_rate: float) -> tuple[float, float]:
    """(mean, p95) of the queue wait in M/M/c, seconds; infinite when unstable."""
    if arrival_rate >= servers * MU:
        return math.inf, math.inf
    waiting = erlang_c(servers, arrival_rate / MU)
    drain = servers * MU - arrival_rate
    p95 = math.log(waiting / 0.05) / drain if waiting > 0.05 else 0.0
    return waiting / drain, p95


def simulated_wait(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    routing: str,
    pods: int,
    slots: int,
    rate: float,
    spread: str = "0",
    duration: float = DURATION,
) -> tuple[float, float]:
    """(mean, p95) queue wait of ``static:pods`` at ``rate`` requests/s, seconds."""
    trace = tmp_path / "poisson.csv"
    half = duration / 2  # the last row lasts as long as the one before
    trace.write_text(
        f"time,rate,prompt_tokens,completion_tokens\n0,{rate},100,15\n{half:g},{rate},100,15\n"
    )
    argv = ["simulate", "--trace", str(trace), "--policy", f"static:{pods}"]
    argv += ["--routing", routing, "--parallel", str(slots), "--max-queue", "100000"]
    argv += ["--service-time", "exponential", "--token-spread", spread, "--json"]
    assert main(argv) == 0
    figures = json.loads(capsys.readouterr().out)["policies"][f"static:{pods}"]
    assert figures["rejected"] == 0  # the queue is unbounded for the theory to hold
    return figures["queue_wait_mean_seconds"], figures["queue_wait_p95_seconds"]


def within(measured: tuple[float, float], theory: tuple[float, float]) -> bool:
    return all(abs(m / t - 1) <= TOLERANCE for m, t in zip(measured, theory, strict=True))


def test_random_routing_is_m_m_1_per_pod(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Four one-slot pods at 75 % load: each an M/M/1 queue at lambda = 0.375/s
    # (theory: mean 6.0 s, p95 21.7 s).
    pods, rate = 4, 0.75 * 4 * MU
    measured = simulated_wait(tmp_path, capsys, routing="random", pods=pods, slots=1, rate=rate)
    assert within(measured, mmc_wait(1, rate / pods)), (measured, mmc_wait(1, rate / pods))
    # The test can fail: a pod with two slots (M/M/2), or one queue for all four pods
    # (M/M/4, the shared queue), is far from what random routing gives.
    assert not within(measured, mmc_wait(2, rate / pods))
    assert not within(measured, mmc_wait(pods, rate))


def test_the_shared_queue_is_m_m_c_over_every_slot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two pods with two slots each behind the router at 75 % load: M/M/4 at
    # lambda = 1.5/s (theory: mean 1.02 s, p95 4.64 s).
    rate = 0.75 * 4 * MU
    measured = simulated_wait(tmp_path, capsys, routing="shared", pods=2, slots=2, rate=rate)
    assert within(measured, mmc_wait(4, rate)), (measured, mmc_wait(4, rate))
    # c off by one either way, or the pods' count as c, is not what the model does.
    for wrong in (3, 5, 2):
        assert not within(measured, mmc_wait(wrong, rate))


def test_chat_tokens_make_it_no_m_m_c_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Why --token-spread 0 exists: with the default lognormal tokens, an exponential
    # around each request's own mean is a mixture with more variance than one
    # exponential, so the waits are longer than M/M/c's (+50 % on the mean, +55 %
    # on the p95, measured): a fifth of the run shows it.
    rate = 0.75 * 4 * MU
    measured = simulated_wait(
        tmp_path, capsys, routing="shared", pods=2, slots=2, rate=rate, spread="1", duration=2e5
    )
    mean, p95 = mmc_wait(4, rate)
    assert measured[0] > mean * 1.3
    assert measured[1] > p95 * 1.3


def test_mmc_formulas_match_known_values() -> None:
    # M/M/1: C = rho, mean wait rho / (mu - lambda); M/M/2 at a = 1: C = 1/3.
    assert erlang_c(1, 0.75) == pytest.approx(0.75)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    mean, p95 = mmc_wait(1, 0.375)
    assert mean == pytest.approx(0.75 / (0.5 - 0.375))
    assert p95 == pytest.approx(math.log(0.75 / 0.05) / 0.125)
    assert mmc_wait(2, 1.0) == (math.inf, math.inf)


@pytest.mark.parametrize("spread", ["-0.5", "nan", "inf", "3.5"])
def test_a_token_spread_out_of_range_is_a_usage_error(
    spread: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--policy", "static:1", "--token-spread", spread]) == 2
    err = capsys.readouterr().err
    assert "--token-spread" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
