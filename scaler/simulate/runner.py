"""Replay a trace against one policy: the model, the metric pipeline, the decisions.

The run is event-driven: arrivals, completions and replicas becoming ready are
processed in time order, interleaved with the pipeline's timers (scrapes, polls) and
a once-per-second sample for the timeline. Every decision is made by
``scaler.policy.decide`` with the same history handling as the controller.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from scaler.policy import (
    History,
    MetricReading,
    Observation,
    Pod,
    PodSample,
    PodValues,
    Reason,
    SourceType,
    TotalValue,
    decide,
    record_scale,
)
from scaler.simulate.model import READY, Cluster, ModelParams
from scaler.simulate.policies import Signal, SimPolicy
from scaler.simulate.types import PolicyResult, PolicyTimeline, Summary, Trace

# Index 0 of the timeline's reasons means "no decision yet" (or a static policy).
NO_DECISION = 0
REASONS = ["-", *(r.value for r in Reason)]
_REASON_INDEX = {r: i + 1 for i, r in enumerate(Reason)}

Progress = Callable[[float], None]
_NO_RATES = PodValues({})


@dataclass(slots=True)
class _CountSample:
    at: float
    queued: int
    in_flight: int
    per_pod: dict[str, int] | None


@dataclass(slots=True)
class _CpuSample:
    at: float
    cpu_seconds: dict[str, float]


def service_times(
    trace: Trace, params: ModelParams, *, exponential: bool, seed: int
) -> list[float]:
    """Each request's service time (seconds), shared by every policy of a run."""
    means = [
        params.service_time(p, c)
        for p, c in zip(trace.prompt_tokens, trace.completion_tokens, strict=True)
    ]
    if not exponential:
        return means
    rng = random.Random(seed * 7919 + 17)
    return [rng.expovariate(1.0 / m) if m > 0 else 0.0 for m in means]


class _Run:
    def __init__(
        self, trace: Trace, times: list[float], policy: SimPolicy, params: ModelParams, seed: int
    ) -> None:
        self.trace = trace
        self.times = times
        self.policy = policy
        self.params = params
        self.cluster = Cluster(params, policy.initial_replicas, seed=seed)
        self.desired = policy.initial_replicas
        self.history = History()
        # Keep just the samples the lag and the rate window can still reach.
        pipeline = policy.pipeline
        self.counts: deque[_CountSample] = deque(
            maxlen=int(pipeline.lag / pipeline.scrape_interval) + 3
        )
        self.cpu: deque[_CpuSample] = deque(
            maxlen=int((pipeline.lag + pipeline.cpu_window) / pipeline.cpu_scrape_interval) + 3
        )
        self.needs_cpu = any(s is Signal.CPU for _, s in policy.signals)
        self.needs_per_pod = policy.spec is not None and any(
            m.source is SourceType.PODS for m in policy.spec.metrics
        )
        self.timeline = PolicyTimeline(reason_names=REASONS)
        self.reason = NO_DECISION
        self.signal = math.nan
        self.scale_ups: list[float] = []
        self.scale_events = 0
        self._pods: tuple[Pod, ...] = ()
        self._pods_version = -1
        self._rates = _NO_RATES
        self._rates_last: _CpuSample | None = None

    # -- the pipeline ---------------------------------------------------------------
    def scrape_counts(self, now: float) -> None:
        cluster = self.cluster
        per_pod = None
        if self.needs_per_pod:
            per_pod = {r.name: r.active + len(r.queue) for r in cluster.replicas}
        self.counts.append(_CountSample(now, cluster.queued, cluster.in_flight, per_pod))

    def scrape_cpu(self, now: float) -> None:
        seconds = {r.name: r.cpu_seconds(now, self.params) for r in self.cluster.replicas}
        self.cpu.append(_CpuSample(now, seconds))

    def _visible_counts(self, seen: float) -> _CountSample | None:
        for sample in reversed(self.counts):
            if sample.at <= seen:
                return sample
        return None

    def _cpu_rates(self, seen: float) -> PodValues:
        """Per-pod CPU cores over the window, as ``rate()`` gives them; reused until a
        new CPU sample comes into view."""
        last = None
        for sample in reversed(self.cpu):
            if sample.at <= seen:
                last = sample
                break
        if last is None:
            return _NO_RATES
        if last is self._rates_last:
            return self._rates  # rates depend only on the newest visible sample
        first = last
        for sample in reversed(self.cpu):
            if sample.at < last.at - self.policy.pipeline.cpu_window:
                break
            if sample.at <= last.at:
                first = sample
        self._rates_last = last
        if first is last:
            self._rates = _NO_RATES
            return _NO_RATES
        span = last.at - first.at
        rates = {}
        for name, used in last.cpu_seconds.items():
            before = first.cpu_seconds.get(name)
            if before is not None:
                rates[name] = PodSample((used - before) / span, last.at, span)
        self._rates = PodValues(rates)
        return self._rates

    def readings(self, now: float) -> dict[str, MetricReading]:
        seen = now - self.policy.pipeline.lag
        counts = self._visible_counts(seen)
        readings: dict[str, MetricReading] = {}
        for name, signal in self.policy.signals:
            if signal is Signal.CPU:
                readings[name] = self._cpu_rates(seen)
            elif counts is not None and counts.per_pod is not None:
                readings[name] = PodValues(
                    {pod: PodSample(float(v), counts.at) for pod, v in counts.per_pod.items()}
                )
            elif counts is not None:
                if signal is Signal.IN_SYSTEM:
                    value = counts.queued + counts.in_flight
                elif signal is Signal.QUEUED:
                    value = counts.queued
                else:
                    value = counts.in_flight
                readings[name] = TotalValue(float(value))
        return readings

    def pods(self) -> tuple[Pod, ...]:
        """The pods as the HPA's lister sees them, rebuilt only when they change."""
        if self._pods_version == self.cluster.version:
            return self._pods
        self._pods_version = self.cluster.version
        request = self.params.cpu_request
        self._pods = tuple(
            Pod(
                r.name,
                ready=r.state == READY,
                ready_transition_time=r.ready_at if r.state == READY else r.created,
                start_time=r.created,
                request=request,
            )
            for r in self.cluster.replicas
        )
        return self._pods

    # -- decisions ------------------------------------------------------------------
    def poll(self, now: float) -> None:
        spec = self.policy.spec
        if spec is None:
            return
        observation = Observation(
            spec_replicas=self.desired,
            status_replicas=len(self.cluster.replicas),
            pods=self.pods(),
            readings=self.readings(now),
        )
        decision, self.history = decide(spec, observation, self.history, now)
        self.reason = _REASON_INDEX[decision.reason]
        first = decision.proposals[0] if decision.proposals else None
        self.signal = math.nan if first is None or first.value is None else first.value
        if decision.replicas != self.desired:
            self.history = record_scale(
                self.history, spec.behavior, self.desired, decision.replicas, now
            )
            if decision.replicas > self.desired:
                self.scale_ups.append(now)
            self.scale_events += 1
            self.desired = decision.replicas
            self.cluster.scale_to(decision.replicas, now)

    def sample(self) -> None:
        cluster = self.cluster
        timeline = self.timeline
        timeline.desired.append(self.desired)
        timeline.ready.append(len(cluster.ready))
        timeline.queue.append(cluster.queued)
        timeline.signal.append(self.signal)
        timeline.reasons.append(self.reason)
        cluster.replica_seconds += len(cluster.replicas) + len(cluster.draining)

    # -- the loop ---------------------------------------------------------------------
    def run(self, progress: Progress | None) -> None:
        arrivals = self.trace.arrivals
        count = len(arrivals)
        cluster = self.cluster
        times = self.times
        pipeline = self.policy.pipeline
        duration = self.trace.duration
        index = 0
        # Timers fire in this order when they coincide: the timeline sample (the state
        # at the end of the second), then the scrapes, then the poll that reads them.
        scrape, cpu_scrape, poll = (
            pipeline.scrape_interval,
            pipeline.cpu_scrape_interval,
            pipeline.poll_interval,
        )
        ticks = [1, 0, 0, 0]  # sample, count scrape, cpu scrape, poll
        at = [1.0, 0.0, 0.0 if self.needs_cpu else math.inf, 0.0]
        next_arrival = arrivals[0] if count else math.inf
        while True:
            kind, timer = 0, at[0]
            if at[1] < timer:
                kind, timer = 1, at[1]
            if at[2] < timer:
                kind, timer = 2, at[2]
            if at[3] < timer:
                kind, timer = 3, at[3]
            if timer > duration:
                break
            while True:
                next_event = cluster.next_event_time()
                if next_event < timer and next_event <= next_arrival:
                    cluster.run_event(times)
                elif next_arrival < timer:
                    cluster.arrive(index, next_arrival, times)
                    index += 1
                    next_arrival = arrivals[index] if index < count else math.inf
                else:
                    break
            ticks[kind] += 1
            if kind == 0:
                at[0] = float(ticks[0])
                self.sample()
                if progress is not None and ticks[0] % 3600 == 0:
                    progress(timer)
            elif kind == 1:
                at[1] = ticks[1] * scrape
                self.scrape_counts(timer)
            elif kind == 2:
                at[2] = ticks[2] * cpu_scrape
                self.scrape_cpu(timer)
            else:
                at[3] = ticks[3] * poll
                self.poll(timer)

    def result(self, burst_at: float | None) -> PolicyResult:
        cluster = self.cluster
        waits = sorted(cluster.waits + cluster.unserved_waits(self.trace.duration))
        reaction = None
        if burst_at is not None:
            later = [t for t in self.scale_ups if t >= burst_at]
            reaction = later[0] - burst_at if later else None
        summary = Summary(
            requests=len(self.trace.arrivals),
            served=len(cluster.waits),
            rejected=cluster.rejected,
            wait_p50=_percentile(waits, 0.50),
            wait_p95=_percentile(waits, 0.95),
            wait_p99=_percentile(waits, 0.99),
            max_queue=max(self.timeline.queue, default=0),
            reaction=reaction,
            replica_seconds=cluster.replica_seconds,
            scale_events=self.scale_events,
        )
        return PolicyResult(self.policy.name, self.policy.signal_name, summary, self.timeline)


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list; 0 for an empty one."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


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


def run_policy(
    trace: Trace,
    times: list[float],
    policy: SimPolicy,
    params: ModelParams,
    *,
    seed: int,
    burst_at: float | None,
    progress: Progress | None = None,
) -> PolicyResult:
    """Simulate one policy over the whole trace."""
    run = _Run(trace, times, policy, params, seed)
    run.run(progress)
    return run.result(burst_at)
