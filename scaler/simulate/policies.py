"""The policies a simulation compares, how each one sees the model, and its routing.

Each policy sees its signals through its own pipeline: how often the model's
counters are scraped, the window of CPU rates, how often it decides, and any extra
monitoring lag. Decisions come from ``scaler.policy.step``, the controller's code.

Each policy runs behind the routing of its stack unless told otherwise: ours
(``queue``, a config, ``static:N``) behind ``scaler router``'s shared queue, the
seed's ``cpu-hpa`` behind the Service's random pick. ``NAME@ROUTING`` overrides it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from scaler.config import MetricConfig, ScalerConfig, TargetConfig, load
from scaler.policy import (
    MISSION_BEHAVIOR,
    Fallback,
    MetricSpec,
    PolicySpec,
    SourceType,
    TargetType,
    ZeroRule,
)
from scaler.simulate.model import ROUTINGS, Cluster, Routing
from scaler.simulate.pipeline import Pipeline, PolicyView, Signal, SignalSource
from scaler.simulate.replica import ModelParams
from scaler.simulate.types import SimulationError

BUILT_IN = ("queue", "cpu-hpa", "static:N")
DEFAULT_POLICIES = ("queue", "cpu-hpa")

# Series of the proxy, of the router and of cAdvisor that the model can produce.
QUEUE_SERIES = "ollama_proxy_queue_depth"
IN_FLIGHT_SERIES = "ollama_proxy_requests_in_flight"
ROUTER_QUEUE_SERIES = "scaler_router_queue_depth"
ROUTER_IN_FLIGHT_SERIES = "scaler_router_requests_in_flight"
CPU_SERIES = "container_cpu_usage_seconds_total"


@dataclass(frozen=True, slots=True)
class SimPolicy:
    """A named policy: an engine spec and its signals, or a fixed replica count.

    ``fallback``: a config's floor for a metric outage (``--outage``), as ``scaler
    run`` holds it."""

    name: str
    pipeline: Pipeline
    spec: PolicySpec | None = None
    signals: tuple[SignalSource, ...] = ()
    static_replicas: int | None = None
    routing: Routing = "shared"
    marks_idle: bool = True
    """scaler marks idle pods before a scale-down (pod-deletion-cost); the HPA does not."""
    fallback: Fallback | None = None
    manual_control: bool = True
    """scaler honours the pause and pin annotations (``--pause``, ``--pin``); the HPA
    knows none, and replays only an outage."""
    zero: ZeroRule | None = None
    """A config's scale-to-zero rule (``minReplicas: 0``): the run starts at 0 and the
    router holds requests while no pod is ready."""
    push_interval: float | None = None
    """``--push``: besides the polls, decide at every change of the routers' queue, at
    most once per this many seconds (the config's ``pushMinInterval``)."""

    def view(self, params: ModelParams, cluster: Cluster) -> PolicyView:
        """What this policy sees of ``cluster``, through its pipeline."""
        metrics = self.spec.metrics if self.spec is not None else ()
        return PolicyView(self.pipeline, self.signals, metrics, params, cluster)

    @property
    def initial_replicas(self) -> int:
        if self.spec is None:
            assert self.static_replicas is not None
            return self.static_replicas
        return 0 if self.zero is not None else self.spec.min_replicas

    @property
    def signal_name(self) -> str:
        if self.spec is None:
            return "none"
        metric = self.spec.metrics[0]
        return f"{metric.name} ({metric.target_type.value} {metric.target:g})"


# metrics-server scrapes kubelets every 15 s (--metric-resolution) over a window of
# about the same length, and the HPA controller syncs every 15 s.
CPU_HPA_PIPELINE = Pipeline(
    scrape_interval=15.0, cpu_scrape_interval=15.0, cpu_window=15.0, poll_interval=15.0
)
# The seed's CPU HPA: 2..10 pods, 80 % of requests, the mission's behavior.
CPU_HPA_SPEC = PolicySpec(
    min_replicas=2,
    max_replicas=10,
    metrics=(MetricSpec("cpu", SourceType.RESOURCE, TargetType.UTILIZATION, 80.0),),
    behavior=MISSION_BEHAVIOR,
)
# Our manifests scrape the proxies every second and cAdvisor every 5 s.
PROXY_SCRAPE_INTERVAL = 1.0
CPU_SCRAPE_INTERVAL = 5.0
DEFAULT_CPU_WINDOW = 30.0


def parse_routing(text: str, *, what: str) -> Routing:
    """``text`` as a routing; ``what`` names where it came from in the error."""
    for routing in ROUTINGS:
        if text == routing:
            return routing
    raise SimulationError(f"{what}: unknown routing {text!r}; valid: {', '.join(ROUTINGS)}")


def build_policy(
    name: str,
    *,
    routing: Routing | None = None,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    target: str | None = None,
    cpu_hpa_lag: float = 0.0,
    cpu_target: float = 80.0,
    parallel: int = 1,
    push: bool = False,
) -> SimPolicy:
    """Resolve a policy name: ``queue``, ``cpu-hpa``, ``static:N`` or ``config``, each
    optionally ``@ROUTING``, which wins over ``routing``; with neither, the policy
    runs behind its own stack's routing (``cpu-hpa``: random, the others: shared).

    ``parallel``: the model's slots per pod; ``queue`` (the built-in config) holds its
    per-slot target with that many slots per pod. A ``config`` file keeps its own
    ``slotsPerPod``, as ``scaler run`` would, and is loaded as ``scaler run`` loads it:
    with ``environ``'s ``SCALER_*`` overrides. ``push``: a policy reading the routers
    directly also decides at their queue changes (``SimPolicy.push_interval``)."""
    base, at, suffix = name.partition("@")
    if at:
        routing = parse_routing(suffix, what=f"policy {name!r}")
    policy = _build(
        base,
        config_path=config_path,
        environ=environ,
        target=target,
        cpu_hpa_lag=cpu_hpa_lag,
        cpu_target=cpu_target,
        parallel=parallel,
        push=push,
    )
    if routing is None:
        routing = "random" if base == "cpu-hpa" else "shared"
    # An explicit routing stays in the name: two routings of one policy are two rows.
    return replace(policy, name=f"{policy.name}@{routing}" if at else policy.name, routing=routing)


def _build(
    name: str,
    *,
    config_path: Path | None,
    environ: Mapping[str, str] | None,
    target: str | None,
    cpu_hpa_lag: float,
    cpu_target: float,
    parallel: int,
    push: bool,
) -> SimPolicy:
    if name == "queue":
        # the built-in default alone: "queue" is the mission's policy, whatever is set
        return _from_config("queue", load(), target, push, slots_per_pod=parallel)
    if name == "config":
        if config_path is None:
            raise SimulationError("policy 'config' needs --config FILE")
        return _from_config(config_path.stem, load(config_path, environ), target, push)
    if name == "cpu-hpa":
        metric = replace(CPU_HPA_SPEC.metrics[0], target=cpu_target)
        spec = replace(CPU_HPA_SPEC, metrics=(metric,))
        pipeline = replace(CPU_HPA_PIPELINE, lag=cpu_hpa_lag)
        signals = (SignalSource("cpu", Signal.CPU),)
        return SimPolicy("cpu-hpa", pipeline, spec, signals, marks_idle=False, manual_control=False)
    if name.startswith("static:"):
        count = name.removeprefix("static:")
        if not count.isdigit() or int(count) < 1:
            raise SimulationError(f"policy {name!r}: N must be a whole number >= 1")
        return SimPolicy(name, CPU_HPA_PIPELINE, static_replicas=int(count))
    raise SimulationError(
        f"unknown policy {name!r}; valid: {', '.join(BUILT_IN)}, or 'config' with --config FILE"
    )


def _from_config(
    name: str,
    config: ScalerConfig,
    key: str | None,
    push: bool,
    *,
    slots_per_pod: int | None = None,
) -> SimPolicy:
    target = _pick_target(config, key)
    if slots_per_pod is not None:
        target = target.model_copy(update={"slots_per_pod": slots_per_pod})
    spec = target.to_policy()
    signals = tuple(_source(m) for m in target.metrics)
    windows = [
        m.rate_window or DEFAULT_CPU_WINDOW for m in target.metrics if m.type is SourceType.RESOURCE
    ]
    pipeline = Pipeline(
        scrape_interval=PROXY_SCRAPE_INTERVAL,
        cpu_scrape_interval=CPU_SCRAPE_INTERVAL,
        cpu_window=max(windows, default=DEFAULT_CPU_WINDOW),
        poll_interval=target.poll_interval or config.poll_interval,
    )
    fallback = None if config.fallback is None else config.fallback.to_policy()
    # Only a router pushes: a policy with no metric read from the routers polls.
    pushed = push and any(m.direct is not None and m.direct.host for m in target.metrics)
    return SimPolicy(
        f"{name}+push" if pushed else name,
        pipeline,
        spec,
        signals,
        fallback=fallback,
        zero=target.zero_rule(),
        push_interval=config.push_min_interval if pushed else None,
    )


def _pick_target(config: ScalerConfig, key: str | None) -> TargetConfig:
    if key is None:
        return config.targets[0]
    for target in config.targets:
        if target.key == key:
            return target
    keys = ", ".join(t.key for t in config.targets)
    raise SimulationError(f"--target {key!r} is not in the config (targets: {keys})")


def _source(metric: MetricConfig) -> SignalSource:
    """How ``metric`` reads the model. Behind random or least routing there is no
    router: a router series then reads the pods' queues, as the proxies' would."""
    if metric.type is SourceType.RESOURCE:
        if metric.resource != "cpu":
            raise SimulationError(
                f"metric {metric.name!r}: the simulator models CPU only, not {metric.resource!r}"
            )
        return SignalSource(metric.name, Signal.CPU)
    # The direct path sums its own series at each poll; the query is only its fallback.
    read = " ".join(metric.direct.series) if metric.direct is not None else metric.query
    what = "direct read" if metric.direct is not None else "query"
    router = ROUTER_QUEUE_SERIES in read or ROUTER_IN_FLIGHT_SERIES in read
    queued = QUEUE_SERIES in read or ROUTER_QUEUE_SERIES in read
    in_flight = IN_FLIGHT_SERIES in read or ROUTER_IN_FLIGHT_SERIES in read
    if queued and in_flight:
        signal = Signal.IN_SYSTEM
    elif queued:
        signal = Signal.QUEUED
    elif in_flight:
        signal = Signal.IN_FLIGHT
    else:
        modelled = (QUEUE_SERIES, IN_FLIGHT_SERIES, ROUTER_QUEUE_SERIES, ROUTER_IN_FLIGHT_SERIES)
        raise SimulationError(
            f"metric {metric.name!r}: its {what} uses series the simulator does not model; "
            f"it models {', '.join(modelled)} and {CPU_SERIES}"
        )
    return SignalSource(metric.name, signal, live=metric.direct is not None, draining=router)
