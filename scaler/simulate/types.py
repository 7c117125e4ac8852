"""Data shared by the simulator's parts: the load trace and each policy's result.

Times are seconds from the start of the trace. Per-second series use compact arrays
(``array``) so a 7-day run at 1 s resolution stays small in memory.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scaler.errors import ScalerError


class TraceError(ScalerError):
    """A trace that cannot be read; the message names the file, line and column."""


class SimulationError(ScalerError):
    """A simulation that cannot be set up (bad scenario, policy or option)."""


@dataclass(frozen=True, slots=True)
class OverrideWindow:
    """A stretch of the trace ``[start, end)`` (seconds) in which something outside the
    rules acts: ``outage`` (no metric can be read), ``pause`` (the pause annotation is
    set) or ``pin`` (the pin annotation is set to ``replicas``)."""

    kind: str
    start: float
    end: float
    replicas: int = 0


@dataclass(frozen=True, slots=True)
class Trace:
    """The requests offered to the service, and what else happens during them.

    ``arrivals``: sorted arrival times in seconds, one per request, all in
    ``[0, duration)``. ``prompt_tokens``/``completion_tokens``: per request, same length.
    ``burst_at``: when the crowd arrives, if the trace knows (built-in scenarios do);
    otherwise the runner detects it from the load.
    ``overrides``: metric outages, pauses and pins to replay (``simulate.overrides``).
    """

    name: str
    duration: float
    arrivals: array[float]
    prompt_tokens: array[int]
    completion_tokens: array[int]
    burst_at: float | None = None
    overrides: tuple[OverrideWindow, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.arrivals)
        if len(self.prompt_tokens) != n or len(self.completion_tokens) != n:
            raise ValueError("arrivals, prompt_tokens and completion_tokens differ in length")

    def arrivals_per_second(self) -> array[int]:
        """Requests arriving in each whole second of the trace."""
        counts = array("i", bytes(4 * int(self.duration)))
        last = len(counts) - 1
        # Counter counts in C; the loop then runs once per busy second, not per request.
        for second, arrived in Counter(map(int, self.arrivals)).items():
            counts[min(second, last)] += arrived
        return counts


@dataclass(frozen=True, slots=True)
class IdleFigures:
    """What scale to zero and push add to a policy's figures (``Summary.idle``).

    ``first_waits``: periods with no ready pod that a request ended (the run starts
    with none when ``minReplicas`` is 0); ``first_wait_p95``: the p95 of the wait of
    the first request of each (seconds; 0 with none). ``replica_seconds_saved``: set
    once the same policy with ``minReplicas: 1`` has run beside it.
    """

    first_waits: int
    first_wait_p95: float
    replica_seconds_saved: float | None = None


@dataclass(slots=True)
class Summary:
    """One policy's figures. Keys of ``as_dict`` are stable (documented in
    docs/simulate.md); times are seconds. ``idle`` adds its keys at the end.

    ``wait_mean`` comes last so positional construction still works; NaN when it was
    not measured (``null`` in JSON, ``-`` in the table)."""

    requests: int
    served: int
    rejected: int
    wait_p50: float
    wait_p95: float
    wait_p99: float
    max_queue: int
    reaction: float | None
    replica_seconds: float
    scale_events: int
    wait_mean: float = math.nan
    idle: IdleFigures | None = None
    """Only when scale to zero or push is in play: the other runs' outputs stay as
    they were."""

    def as_dict(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "requests": self.requests,
            "served": self.served,
            "rejected": self.rejected,
            "queue_wait_mean_seconds": self.wait_mean,
            "queue_wait_p50_seconds": self.wait_p50,
            "queue_wait_p95_seconds": self.wait_p95,
            "queue_wait_p99_seconds": self.wait_p99,
            "max_queue": self.max_queue,
            "reaction_seconds": self.reaction,
            "replica_seconds": self.replica_seconds,
            "scale_events": self.scale_events,
        }
        if self.idle is not None:
            figures["first_waits_after_idle"] = self.idle.first_waits
            figures["first_wait_after_idle_p95_seconds"] = self.idle.first_wait_p95
            figures["replica_seconds_saved"] = self.idle.replica_seconds_saved
        return figures


@dataclass(slots=True)
class PolicyTimeline:
    """Per-second state of one policy's run, sampled at the end of each second.

    ``reasons`` holds indexes into ``reason_names`` (the decision in force).
    ``signal`` is the value of the policy's first metric as the policy saw it.
    """

    desired: array[int] = field(default_factory=lambda: array("i"))
    ready: array[int] = field(default_factory=lambda: array("i"))
    queue: array[int] = field(default_factory=lambda: array("i"))
    signal: array[float] = field(default_factory=lambda: array("d"))
    reasons: array[int] = field(default_factory=lambda: array("b"))
    reason_names: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PolicyResult:
    """A policy's name, what its signal is, its figures and its timeline.

    ``routing``: what sent requests to the pods (``model.ROUTINGS``).
    ``scale_ups``: when it scaled up (seconds), for the reaction to a burst.
    """

    name: str
    signal_name: str
    summary: Summary
    timeline: PolicyTimeline
    routing: str
    scale_ups: list[float] = field(default_factory=list)
