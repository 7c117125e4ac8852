"""Run every policy of a simulation on the same trace, in parallel when it pays.

All policies see the same arrivals and the same service times (one seed). A long run
spreads the policies over processes (forked, so the trace is shared, not copied);
the results are identical either way.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized

from scaler.simulate.policies import SimPolicy
from scaler.simulate.replica import ModelParams
from scaler.simulate.runner import run_policy, service_times
from scaler.simulate.summary import reaction_to
from scaler.simulate.types import PolicyResult, Trace

# Below this many simulated policy-seconds, processes cost more than they save.
PARALLEL_THRESHOLD = 200_000


@dataclass(frozen=True, slots=True)
class Simulation:
    """What to simulate. ``exponential``: service times drawn around their mean."""

    trace: Trace
    policies: tuple[SimPolicy, ...]
    params: ModelParams
    seed: int
    exponential: bool = False


# Set in the parent before forking; children read them instead of unpickling a trace.
_shared: dict[str, object] = {}


def _run_one(index: int) -> PolicyResult:
    simulation = _shared["simulation"]
    times = _shared["times"]
    done = _shared["done"]
    assert isinstance(simulation, Simulation) and isinstance(times, list)
    assert isinstance(done, Synchronized)

    def report(seconds: float) -> None:
        with done.get_lock():
            done.value += 3600.0

    return run_policy(
        simulation.trace,
        times,
        simulation.policies[index],
        simulation.params,
        seed=simulation.seed,
        burst_at=None,  # the parent fills in the reaction
        progress=report,
    )


def simulate(
    simulation: Simulation,
    *,
    progress: Callable[[float], None] | None = None,
    workers: int | None = None,
) -> tuple[list[PolicyResult], float | None]:
    """Run each policy; return the results and when the burst began (seconds).

    ``progress`` gets the simulated policy-seconds done so far.
    """
    trace = simulation.trace
    times = service_times(
        trace, simulation.params, exponential=simulation.exponential, seed=simulation.seed
    )
    count = len(simulation.policies)
    workers = min(count, workers or os.cpu_count() or 1)
    if workers < 2 or trace.duration * count < PARALLEL_THRESHOLD:
        burst_at = burst_time(simulation, times)
        results = []
        for index, policy in enumerate(simulation.policies):
            offset = index * trace.duration

            def report(seconds: float, offset: float = offset) -> None:
                if progress is not None:
                    progress(offset + seconds)

            results.append(
                run_policy(
                    trace,
                    times,
                    policy,
                    simulation.params,
                    seed=simulation.seed,
                    burst_at=burst_at,
                    progress=report,
                )
            )
        return results, burst_at
    context = multiprocessing.get_context("fork")
    done = context.Value("d", 0.0)
    _shared.update(simulation=simulation, times=times, done=done)
    try:
        with context.Pool(workers) as pool:
            pending = pool.map_async(_run_one, range(count))
            # Only the reactions need the burst: find it while the policies run.
            burst_at = burst_time(simulation, times)
            while not pending.ready():
                pending.wait(0.2)
                if progress is not None:
                    progress(done.value)
            results = pending.get()
    finally:
        _shared.clear()
    for result in results:
        result.summary.reaction = reaction_to(burst_at, result.scale_ups)
    return results, burst_at


def burst_time(simulation: Simulation, times: list[float]) -> float | None:
    """When the load first exceeds what the first policy starts with (or the trace's
    own ``burst_at``)."""
    mean_service = sum(times) / len(times) if times else 0.0
    if mean_service <= 0:
        return simulation.trace.burst_at
    # A policy that starts at zero (scale to zero): the burst is what one pod cannot
    # serve, not the first request.
    initial = max(1, simulation.policies[0].initial_replicas) * simulation.params.parallel
    return detect_burst(simulation.trace, initial / mean_service)


def detect_burst(trace: Trace, capacity_per_second: float) -> float | None:
    """When the offered load first exceeds ``capacity_per_second`` requests/s.

    Uses the trace's own ``burst_at`` when it has one; otherwise the start of the
    first 60 s window whose average arrival rate exceeds the capacity.
    """
    if trace.burst_at is not None:
        return trace.burst_at
    counts = trace.arrivals_per_second()
    window = 60
    total = 0
    for second, arrived in enumerate(counts):
        total += arrived
        if second >= window:
            total -= counts[second - window]
        if total / window > capacity_per_second:
            return float(max(0, second - window + 1))
    return None
