"""The pipeline a policy sees the model through: its scrapes, CPU rates and each
metric's reading.

A policy reads the model through its ``Pipeline``: request counts
scraped every ``scrape_interval`` or read live at the poll (a ``direct`` metric),
cumulative CPU seconds scraped every ``cpu_scrape_interval`` and turned into rates
over ``cpu_window``, all seen ``lag`` seconds late.

Reading a metric is split in two: ``key`` says cheaply what the reading would be made
from (equal keys, equal readings), ``reading`` builds it. The runner needs the
reading only when the key is new.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from scaler.policy import MetricReading, MetricSpec, PodSample, PodValues, SourceType, TotalValue
from scaler.simulate.model import Cluster
from scaler.simulate.replica import PENDING, ModelParams

Key = float | None
"""What a metric's reading was made from: its value, or when its sample was taken;
``None`` when there is nothing to read yet."""


class Signal(StrEnum):
    """What a metric measures in the model."""

    CPU = "cpu"  # per-pod CPU cores, a rate over the pipeline's window
    QUEUED = "queued"  # requests waiting in the proxies' queues
    IN_FLIGHT = "in_flight"  # requests being served
    IN_SYSTEM = "in_system"  # both


@dataclass(frozen=True, slots=True)
class SignalSource:
    """How one metric of a policy reads the model.

    ``live``: read at each decision, as the controller's ``direct`` fast path reads
    every ready pod's proxy (or every router) at each poll; otherwise the last scrape
    is read. ``draining``: a live read counts the requests draining pods still hold,
    as the routers' gauges do; the ready pods' proxies leave them out.
    """

    metric: str
    signal: Signal
    live: bool = False
    draining: bool = False


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The delays between the model and a decision. Seconds.

    ``scrape_interval``: how often request counts are sampled (the proxies' scrape).
    ``cpu_scrape_interval``: how often CPU counters are sampled (cAdvisor's scrape).
    ``cpu_window``: the rate() window CPU usage is averaged over.
    ``poll_interval``: how often the policy decides (poll or HPA sync).
    ``lag``: extra delay before a sample becomes visible (a slow monitoring path).
    """

    scrape_interval: float
    cpu_scrape_interval: float
    cpu_window: float
    poll_interval: float
    lag: float = 0.0


@dataclass(slots=True)
class _CountSample:
    """Request counts at one scrape; ``per_pod``: (queued, in flight) by pod."""

    at: float
    queued: int
    in_flight: int
    per_pod: dict[str, tuple[int, int]] | None


@dataclass(slots=True)
class _CpuSample:
    at: float
    cpu_seconds: dict[str, float]


def _count(signal: Signal, queued: int, in_flight: int) -> int:
    if signal is Signal.IN_SYSTEM:
        return queued + in_flight
    if signal is Signal.QUEUED:
        return queued
    return in_flight


class PolicyView:
    """One policy's view of one cluster."""

    def __init__(
        self,
        pipeline: Pipeline,
        signals: tuple[SignalSource, ...],
        metrics: tuple[MetricSpec, ...],
        params: ModelParams,
        cluster: Cluster,
    ) -> None:
        self.params = params
        self.cluster = cluster
        self.pipeline = pipeline
        # Keep just the samples the lag and the rate window can still reach.
        self.counts: deque[_CountSample] = deque(
            maxlen=int(pipeline.lag / pipeline.scrape_interval) + 3
        )
        self.cpu: deque[_CpuSample] = deque(
            maxlen=int((pipeline.lag + pipeline.cpu_window) / pipeline.cpu_scrape_interval) + 3
        )
        self.needs_cpu = any(s.signal is Signal.CPU for s in signals)
        self.needs_counts = any(s.signal is not Signal.CPU and not s.live for s in signals)
        self.needs_per_pod = any(m.source is SourceType.PODS for m in metrics)
        self._rates: PodValues | None = None
        self._rates_last: _CpuSample | None = None

    # -- scrapes ----------------------------------------------------------------------
    def scrape_counts(self, now: float) -> None:
        cluster = self.cluster
        per_pod = None
        if self.needs_per_pod:
            per_pod = {r.name: (len(r.queue), r.active) for r in cluster.replicas}
        self.counts.append(_CountSample(now, cluster.queued, cluster.in_flight, per_pod))

    def scrape_cpu(self, now: float) -> None:
        # A Pending pod runs no container: cAdvisor has no series for it.
        seconds = {
            r.name: r.cpu_seconds(now, self.params)
            for r in self.cluster.replicas
            if r.state != PENDING
        }
        self.cpu.append(_CpuSample(now, seconds))

    # -- readings ---------------------------------------------------------------------
    def key(self, source: SignalSource, now: float) -> Key:
        """What a metric's reading at ``now`` is made from: most polls need no more."""
        seen = now - self.pipeline.lag
        signal = source.signal
        if signal is Signal.CPU:
            rates = self._cpu_rates(seen)
            return None if rates is None or self._rates_last is None else self._rates_last.at
        if source.live:
            # The direct path, read at the poll itself: every router (everything in
            # the system), or every ready pod's proxy (draining pods are out).
            cluster = self.cluster
            if source.draining:
                return float(_count(signal, cluster.queued, cluster.in_flight))
            return float(_count(signal, *cluster.serving_counts()))
        counts = self._visible_counts(seen)
        if counts is None:
            return None
        if counts.per_pod is not None:
            return counts.at  # the scrape it comes from
        return float(_count(signal, counts.queued, counts.in_flight))

    def reading(self, source: SignalSource, key: Key, now: float) -> MetricReading | None:
        """The reading ``key`` (given by ``key(source, now)``) stands for."""
        if key is None:
            return None
        seen = now - self.pipeline.lag
        if source.signal is Signal.CPU:
            return self._cpu_rates(seen)  # computed for ``key`` already: reused
        counts = None if source.live else self._visible_counts(seen)
        if counts is None or counts.per_pod is None:
            return TotalValue(key)
        samples = {
            pod: PodSample(float(_count(source.signal, queued, in_flight)), counts.at)
            for pod, (queued, in_flight) in counts.per_pod.items()
        }
        return PodValues(samples)

    def _visible_counts(self, seen: float) -> _CountSample | None:
        for sample in reversed(self.counts):
            if sample.at <= seen:
                return sample
        return None

    def _cpu_rates(self, seen: float) -> PodValues | None:
        """Per-pod CPU cores over the window, as ``rate()`` gives them; reused until a
        new CPU sample comes into view."""
        cpu = self.cpu
        if cpu and cpu[-1].at <= seen:
            last: _CpuSample | None = cpu[-1]  # no lag: the newest sample is in view
        else:
            last = next((sample for sample in reversed(cpu) if sample.at <= seen), None)
        if last is None:
            return None
        if last is self._rates_last:
            return self._rates  # rates depend only on the newest visible sample
        first = last
        for sample in reversed(cpu):
            if sample.at < last.at - self.pipeline.cpu_window:
                break
            if sample.at <= last.at:
                first = sample
        self._rates_last = last
        if first is last:
            self._rates = None  # one sample: rate() has nothing to go on yet
            return None
        span = last.at - first.at
        rates = {}
        for name, used in last.cpu_seconds.items():
            before = first.cpu_seconds.get(name)
            if before is not None:
                rates[name] = PodSample((used - before) / span, last.at, span)
        self._rates = PodValues(rates)
        return self._rates
