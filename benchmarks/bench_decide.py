"""Cost of one policy decision: µs per step() at a 1 s cadence with a 60 s window.

Run:  .venv/bin/python -m benchmarks.bench_decide [--decisions N] [--repeat R]

The mission policy (60 s scale-down window, so ~60 recommendations in the history)
is fed a load that changes every 30 s, with two metrics (queue and CPU per pod over
10 pods), so every stage runs: metric math, stabilization, rate limits, scale events.
"""

from __future__ import annotations

import argparse
import statistics
import time

from scaler import config
from scaler.policy import (
    Observation,
    Pod,
    PodSample,
    PodValues,
    Seen,
    StepState,
    TotalValue,
    record_scaled,
    step,
)


def run(decisions: int) -> tuple[float, int]:
    """Seconds for ``decisions`` decisions and the final history length."""
    loaded = config.load()
    spec = loaded.step_spec(loaded.targets[0])
    pods = tuple(Pod(f"ollama-{i}", start_time=-1000.0, request=2.0) for i in range(10))
    state = StepState()
    replicas = 2
    started = time.perf_counter()
    for t in range(decisions):
        load = float((t // 30) % 7)
        cpu = {p.name: PodSample(0.4 * (1 + load / 4)) for p in pods[:replicas]}
        observation = Observation(
            spec_replicas=replicas,
            status_replicas=replicas,
            pods=pods[:replicas],
            readings={"queue": TotalValue(load), "cpu": PodValues(cpu)},
        )
        decision, state = step(spec, state, Seen(observation), float(t))
        if decision.changes_scale:
            state = record_scaled(spec, state, decision, float(t))
            replicas = decision.replicas
    elapsed = time.perf_counter() - started
    return elapsed, len(state.history.recommendations or ())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    per_decision = []
    length = 0
    for _ in range(args.repeat):
        elapsed, length = run(args.decisions)
        per_decision.append(elapsed / args.decisions * 1e6)
    print(
        f"step(): median {statistics.median(per_decision):.1f} µs per decision, "
        f"best {min(per_decision):.1f} µs ({args.decisions} decisions x {args.repeat}, "
        f"1 s cadence, 60 s window, history length {length})"
    )


if __name__ == "__main__":
    main()
