"""The policy's side of a simulated poll: what it reads, and the controller's step.

Every decision is made by ``scaler.policy.step``, the controller's own step (the
engine with the overrides around it: an outage, a pause or a pin from the trace's
windows, and the fallback), and each scale change is recorded with
``record_scaled`` as the controller records it after a successful patch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from scaler.policy import (
    Decision,
    MetricProposal,
    MetricReading,
    Observation,
    Seen,
    StepState,
    TargetSpec,
    Unavailable,
    context,
    proposal_valid_until,
    propose_metric,
    record_scaled,
    step,
)
from scaler.simulate.overrides import NO_ANNOTATIONS, windows_at
from scaler.simulate.pipeline import Key, PolicyView
from scaler.simulate.policies import SimPolicy
from scaler.simulate.types import OverrideWindow

# What a poll in an outage window reads: nothing, as when Prometheus is unreachable.
OUTAGE = Unavailable("outage: no metric could be read")

# Proposals remembered per metric while the observation stays the same: enough for
# every queue depth a run meets; CPU keys (sample times) never repeat and just cycle.
_MEMO_SIZE = 64


@dataclass(frozen=True, slots=True)
class Poll:
    """One poll as a run records it: when, what the step saw, what it decided."""

    now: float
    seen: Seen
    decision: Decision


@dataclass(slots=True)
class _Memo:
    """A metric's proposals by what their readings were made from, for one observation.

    A proposal is a pure function of the metric, its reading, the replica counts and
    the pods, and of the time only until its ``valid_until``; so while all of these
    are unchanged, computing it again would give the very same proposal.
    """

    state: tuple[int, int] = (-1, -1)  # the observation's: desired, the cluster's version
    proposals: dict[Key, tuple[float, MetricProposal]] = field(default_factory=dict)


class Decider:
    """One policy's decisions over a run: its step state, readings and memos.

    ``reuse_proposals=False`` reads every metric and computes its proposal at every
    poll, as the controller does. ``record``: each poll is appended to it."""

    def __init__(
        self,
        policy: SimPolicy,
        target: TargetSpec,
        view: PolicyView,
        windows: Sequence[OverrideWindow],
        *,
        reuse_proposals: bool,
        record: list[Poll] | None,
    ) -> None:
        self.policy = policy
        self.target = target
        self.view = view
        self.windows = windows
        self.reuse_proposals = reuse_proposals
        self.record = record
        self.state = StepState()
        self._seen = Seen(Observation(spec_replicas=0, status_replicas=0))
        metrics = target.policy.metrics
        self._outage: dict[str, MetricReading] = {m.name: OUTAGE for m in metrics}
        self._sources = [
            (metric, source, _Memo())
            for metric, source in zip(metrics, policy.signals, strict=True)
        ]

    def decide(self, observation: Observation, state: tuple[int, int], now: float) -> Decision:
        """The decision at ``now``; ``state`` identifies ``observation`` (desired
        replicas, the cluster's version) for the memos."""
        target = self.target
        annotations, outage = NO_ANNOTATIONS, False
        if self.windows:
            annotations, outage = windows_at(self.windows, now)
        if outage:
            seen = Seen(replace(observation, readings=self._outage), annotations)
            decision, self.state = step(target, self.state, seen, now)
        elif self.reuse_proposals:
            proposals, unread = self._proposals(observation, state, now)
            seen = self._seen
            if seen.observation is not observation or seen.annotations is not annotations:
                seen = self._seen = Seen(observation, annotations)
            decision, self.state = step(
                target, self.state, seen, now, proposals=proposals, unread=unread
            )
        else:  # the plain call, as the controller makes it
            seen = Seen(replace(observation, readings=self._readings(now)), annotations)
            decision, self.state = step(target, self.state, seen, now)
        if self.record is not None:
            self.record.append(Poll(now, seen, decision))
        return decision

    def scaled(self, decision: Decision, now: float) -> None:
        """The cluster was scaled as ``decision`` says, at ``now``."""
        self.state = record_scaled(self.target, self.state, decision, now)

    def _readings(self, now: float) -> dict[str, MetricReading]:
        """Each metric's reading at ``now``; a metric with nothing to read yet has none."""
        readings = {}
        for source in self.policy.signals:
            reading = self.view.reading(source, self.view.key(source, now), now)
            if reading is not None:
                readings[source.metric] = reading
        return readings

    def _proposals(
        self, observation: Observation, state: tuple[int, int], now: float
    ) -> tuple[tuple[MetricProposal, ...], bool]:
        """Each metric's proposal, as ``propose`` gives it, reused while nothing it
        depends on has changed: most polls of a week-long run change nothing. Also
        whether no metric had a reading (the step counts that as a failed poll)."""
        spec = self.target.policy
        ctx = None
        proposals = []
        unread = True
        for metric, source, memo in self._sources:
            key = self.view.key(source, now)
            if key is not None:
                unread = False
            if memo.state != state:
                memo.state = state
                memo.proposals.clear()
            known = memo.proposals.get(key)
            if known is not None and now < known[0]:
                proposals.append(known[1])
                continue
            if ctx is None:
                ctx = context(spec, observation, now)
            reading = self.view.reading(source, key, now)
            proposal = propose_metric(metric, reading, ctx)
            if len(memo.proposals) >= _MEMO_SIZE:
                memo.proposals.clear()
            memo.proposals[key] = (proposal_valid_until(metric, reading, ctx), proposal)
            proposals.append(proposal)
        return tuple(proposals), unread
