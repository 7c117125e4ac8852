"""Scale to zero in a simulation: the same policy with ``minReplicas: 1`` beside it.

What ``minReplicas: 0`` saves is only meaningful against the same rules that keep one
pod: a policy with a zero rule gets that companion row (``NAME-min1``), and the
closing note gives the replica-seconds saved and the first request's p95 wait after
an idle period (the price: a cold start).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from scaler.simulate.policies import SimPolicy
from scaler.simulate.report import format_seconds
from scaler.simulate.types import PolicyResult


def companion_name(policy: SimPolicy) -> str:
    return f"{policy.name}-min1"


def with_companions(policies: Sequence[SimPolicy]) -> tuple[SimPolicy, ...]:
    """``policies``, then for each one with a zero rule the same with a minimum of 1
    (its engine's minimum is 1 already: without the rule it never goes to 0)."""
    extra = [replace(p, name=companion_name(p), zero=None) for p in policies if p.zero]
    return (*policies, *extra)


def fill_savings(policies: Sequence[SimPolicy], results: Sequence[PolicyResult]) -> None:
    """Set each zero policy's ``replica_seconds_saved`` against its companion."""
    by_name = {r.name: r for r in results}
    for policy, result in zip(policies, results, strict=True):
        companion = by_name.get(companion_name(policy))
        idle = result.summary.idle
        if policy.zero is None or companion is None or idle is None:
            continue
        saved = companion.summary.replica_seconds - result.summary.replica_seconds
        result.summary.idle = replace(idle, replica_seconds_saved=saved)


def zero_notes(results: Sequence[PolicyResult]) -> list[str]:
    """One closing line per zero policy: what it saved, and what its first request
    after an idle period waited."""
    lines = []
    for result in results:
        idle = result.summary.idle
        if idle is None or idle.replica_seconds_saved is None:
            continue
        kept = result.summary.replica_seconds + idle.replica_seconds_saved
        share = idle.replica_seconds_saved / kept if kept > 0 else 0.0
        lines.append(
            f"{result.name}: scale to zero saves {idle.replica_seconds_saved:,.0f} "
            f"replica-seconds ({share:.0%}) against minReplicas 1; the first request after "
            f"each of {idle.first_waits:,} idle periods waits p95 "
            f"{format_seconds(idle.first_wait_p95)} s (a pod's start and the model's load)"
        )
    return lines
