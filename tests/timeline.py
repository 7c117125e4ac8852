"""Drive the policy engine along a timeline, as the controller and simulator do."""

from __future__ import annotations

from scaler.policy import (
    Decision,
    History,
    MetricReading,
    Observation,
    Pod,
    PolicySpec,
    TotalValue,
    decide,
    record_scale,
)


class Timeline:
    """Feeds each decision back as the next current count, recording scale events."""

    def __init__(self, spec: PolicySpec, *, replicas: int, history: History | None = None):
        self.spec = spec
        self.replicas = replicas
        self.history = history or History()

    def at(
        self,
        t: float,
        *,
        load: float | None = None,
        readings: dict[str, MetricReading] | None = None,
        pods: tuple[Pod, ...] = (),
    ) -> Decision:
        if readings is None:
            readings = {} if load is None else {"queue": TotalValue(load)}
        observation = Observation(
            spec_replicas=self.replicas,
            status_replicas=self.replicas,
            pods=pods,
            readings=readings,
        )
        decision, self.history = decide(self.spec, observation, self.history, t)
        if decision.replicas != self.replicas:
            self.history = record_scale(
                self.history, self.spec.behavior, self.replicas, decision.replicas, t
            )
            self.replicas = decision.replicas
        return decision
