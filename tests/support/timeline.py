"""Drive one target's step along a timeline, as the controller and simulator do."""

from __future__ import annotations

from collections.abc import Mapping

from scaler.policy import (
    Decision,
    Fallback,
    History,
    MetricReading,
    Observation,
    Pod,
    PolicySpec,
    Seen,
    StepState,
    TargetSpec,
    TotalValue,
    ZeroRule,
    record_scaled,
    step,
)


class Timeline:
    """Feeds each decision back as the next current count, recording scale events.

    ``fallback``, ``yield_to_hpa`` and ``zero``: the rest of the target's spec, for
    the overrides and scale to zero; ``at`` takes the Deployment's annotations and a
    conflicting HPA."""

    def __init__(
        self,
        spec: PolicySpec,
        *,
        replicas: int,
        history: History | None = None,
        fallback: Fallback | None = None,
        yield_to_hpa: bool = True,
        zero: ZeroRule | None = None,
    ):
        self.spec = spec
        self.target = TargetSpec(spec, fallback, yield_to_hpa, zero)
        self.replicas = replicas
        self.state = StepState(history or History())

    @property
    def history(self) -> History:
        return self.state.history

    def at(
        self,
        t: float,
        *,
        load: float | None = None,
        readings: dict[str, MetricReading] | None = None,
        pods: tuple[Pod, ...] = (),
        annotations: Mapping[str, str] | None = None,
        hpa: str | None = None,
    ) -> Decision:
        if readings is None:
            readings = {} if load is None else {"queue": TotalValue(load)}
        observation = Observation(
            spec_replicas=self.replicas,
            status_replicas=self.replicas,
            pods=pods,
            readings=readings,
        )
        seen = Seen(observation, annotations or {}, hpa)
        decision, self.state = step(self.target, self.state, seen, t)
        if decision.changes_scale:
            self.state = record_scaled(self.target, self.state, decision, t)
            self.replicas = decision.replicas
        return decision
