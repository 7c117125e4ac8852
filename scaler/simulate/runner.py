"""Replay a trace against one policy: the model, the metric pipeline, the decisions.

The run is event-driven: arrivals, completions and replicas becoming ready are
processed in time order, interleaved with the pipeline's timers (scrapes, polls) and
a once-per-second sample for the timeline. Every decision is made by
``scaler.policy.step``, the controller's own step (overrides, engine, fallback), and
each scale change is recorded with ``record_scaled`` as the controller records it
(``decider``). The finished run's figures are ``summary``'s.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from itertools import repeat
from operator import add, truediv

from scaler.policy import Observation, Pod, PodPhase, Reason, TargetSpec
from scaler.simulate.decider import Decider, Poll
from scaler.simulate.gcpause import gc_paused
from scaler.simulate.model import Cluster
from scaler.simulate.policies import SimPolicy
from scaler.simulate.replica import PENDING, READY, ModelParams
from scaler.simulate.summary import summarize
from scaler.simulate.types import OverrideWindow, PolicyResult, PolicyTimeline, Trace

# Index 0 of the timeline's reasons means "no decision yet" (or a static policy).
NO_DECISION = 0
REASONS = ["-", *(r.value for r in Reason)]
_REASON_INDEX = {r: i + 1 for i, r in enumerate(Reason)}

Progress = Callable[[float], None]


def service_times(
    trace: Trace, params: ModelParams, *, exponential: bool, seed: int
) -> list[float]:
    """Each request's service time (seconds), shared by every policy of a run."""
    # prompt / prompt tokens/s + completion / completion tokens/s, over whole columns:
    # a week has ~600,000 requests.
    prompt = map(truediv, trace.prompt_tokens, repeat(params.prompt_tokens_per_second))
    completion = map(truediv, trace.completion_tokens, repeat(params.completion_tokens_per_second))
    means = list(map(add, prompt, completion))
    if not exponential:
        return means
    rng = random.Random(seed * 7919 + 17)
    return [rng.expovariate(1.0 / m) if m > 0 else 0.0 for m in means]


class _Run:
    def __init__(
        self,
        trace: Trace,
        times: list[float],
        policy: SimPolicy,
        params: ModelParams,
        seed: int,
        *,
        reuse_proposals: bool = True,
        record: list[Poll] | None = None,
    ) -> None:
        self.trace = trace
        self.times = times
        self.policy = policy
        self.params = params
        self.cluster = Cluster(
            params,
            policy.initial_replicas,
            seed=seed,
            routing=policy.routing,
            marks_idle=policy.marks_idle,
            holds=policy.zero is not None,
        )
        self.desired = policy.initial_replicas
        self.view = policy.view(params, self.cluster)
        self.decider = None
        if policy.spec is not None:
            self.decider = Decider(
                policy,
                TargetSpec(policy.spec, policy.fallback, zero=policy.zero),
                self.view,
                _windows(policy, trace),
                # The zero rule reads its metric from the readings, which the memoized
                # proposals skip: such a run reads at every poll, as the controller does.
                reuse_proposals=reuse_proposals and policy.zero is None,
                record=record,
            )
        self.timeline = PolicyTimeline(reason_names=REASONS)
        self.reason = NO_DECISION
        self.signal = math.nan
        self.scale_ups: list[float] = []
        self.scale_events = 0
        self._observed_state = (-1, -1)  # desired replicas, the cluster's version
        self._observed = Observation(spec_replicas=0, status_replicas=0)
        self.last_push = -math.inf  # when the last pushed decision was made

    def observation(self) -> Observation:
        """The scale and the pods as the HPA's lister sees them, rebuilt only when they
        change (a scale, a pod becoming ready or leaving): polls far outnumber those."""
        state = (self.desired, self.cluster.version)
        if state == self._observed_state:
            return self._observed
        self._observed_state = state
        request = self.params.cpu_request
        pods = tuple(
            Pod(
                r.name,
                phase=PodPhase.PENDING if r.state == PENDING else PodPhase.RUNNING,
                ready=r.state == READY,
                ready_transition_time=r.ready_at if r.state == READY else r.created,
                start_time=r.created,
                request=request,
            )
            for r in self.cluster.replicas
        )
        self._observed = Observation(
            spec_replicas=self.desired, status_replicas=len(pods), pods=pods
        )
        return self._observed

    # -- decisions ------------------------------------------------------------------
    def poll(self, now: float) -> None:
        decider = self.decider
        if decider is None:
            return
        decision = decider.decide(self.observation(), self._observed_state, now)
        self.reason = _REASON_INDEX[decision.reason]
        first = decision.proposals[0] if decision.proposals else None
        self.signal = math.nan if first is None or first.value is None else first.value
        if decision.replicas != self.desired:
            decider.scaled(decision, now)
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
        # Pending pods cost nothing: they run nowhere.
        cluster.replica_seconds += (
            len(cluster.replicas) - len(cluster.pending) + len(cluster.draining)
        )

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
        ticks = [1, 0, 0, 0, 0]  # sample, count scrape, cpu scrape, poll, push
        at = [
            1.0,
            0.0 if self.view.needs_counts else math.inf,
            0.0 if self.view.needs_cpu else math.inf,
            0.0,
            math.inf,  # the next pushed decision, once the queue has changed
        ]
        push = self.policy.push_interval
        next_arrival = arrivals[0] if count else math.inf
        while True:
            kind, timer = 0, at[0]
            if at[1] < timer:
                kind, timer = 1, at[1]
            if at[2] < timer:
                kind, timer = 2, at[2]
            if at[3] < timer:
                kind, timer = 3, at[3]
            if at[4] < timer:
                kind, timer = 4, at[4]
            if timer > duration:
                break
            preempted = False
            while True:
                next_event = cluster.next_event_time()
                if next_event < timer and next_event <= next_arrival:
                    moment = next_event
                    cluster.run_event(times)
                elif next_arrival < timer:
                    moment = next_arrival
                    cluster.arrive(index, next_arrival, times)
                    index += 1
                    next_arrival = arrivals[index] if index < count else math.inf
                else:
                    break
                if push is not None and at[4] == math.inf:
                    # The queue changed: the routers push it, and the decision follows
                    # at once, or once pushMinInterval has passed since the last one.
                    at[4] = max(moment, self.last_push + push)
                    if at[4] < timer:
                        preempted = True  # it comes before ``timer``: choose again
                        break
            if preempted:
                continue
            ticks[kind] += 1
            if kind == 0:
                at[0] = float(ticks[0])
                self.sample()
                if progress is not None and ticks[0] % 3600 == 0:
                    progress(timer)
            elif kind == 1:
                at[1] = ticks[1] * scrape
                self.view.scrape_counts(timer)
            elif kind == 2:
                at[2] = ticks[2] * cpu_scrape
                self.view.scrape_cpu(timer)
            elif kind == 3:
                at[3] = ticks[3] * poll
                self.poll(timer)
            else:
                at[4] = math.inf
                self.last_push = timer
                self.poll(timer)

    def result(self, burst_at: float | None) -> PolicyResult:
        policy = self.policy
        summary = summarize(
            self.cluster,
            self.trace,
            self.timeline,
            self.scale_ups,
            scale_events=self.scale_events,
            burst_at=burst_at,
            idle=policy.zero is not None or policy.push_interval is not None,
        )
        return PolicyResult(
            policy.name, policy.signal_name, summary, self.timeline, policy.routing, self.scale_ups
        )


def _windows(policy: SimPolicy, trace: Trace) -> tuple[OverrideWindow, ...]:
    """The trace's override windows this policy sees: all of them, or only the
    outages for a policy that knows no pause or pin annotation (the HPA)."""
    if policy.manual_control:
        return trace.overrides
    return tuple(w for w in trace.overrides if w.kind == "outage")


def run_policy(
    trace: Trace,
    times: list[float],
    policy: SimPolicy,
    params: ModelParams,
    *,
    seed: int,
    burst_at: float | None,
    progress: Progress | None = None,
    reuse_proposals: bool = True,
    record: list[Poll] | None = None,
) -> PolicyResult:
    """Simulate one policy over the whole trace.

    ``reuse_proposals=False`` recomputes every metric's proposal at every poll, as the
    controller does; the result is the same, only slower (the tests check that).
    ``record``: each poll is appended to it (``Poll``); with ``reuse_proposals=False``
    its observations carry the readings, so the polls can be replayed elsewhere.
    """
    run = _Run(trace, times, policy, params, seed, reuse_proposals=reuse_proposals, record=record)
    with gc_paused():
        run.run(progress)
    return run.result(burst_at)
