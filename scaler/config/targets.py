"""Scaling targets in HPA syntax: metrics with PromQL queries and their targets.

Keys are camelCase as in an HPA manifest; the ``behavior`` block, verbatim from
``autoscaling/v2``, is in ``behavior``. Every field says its unit. Unknown keys are
errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import re

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from scaler.config.behavior import BehaviorConfig
from scaler.config.bounds import (
    MAX_INT32,
    MAX_METRICS,
    MAX_POLL_INTERVAL,
    MAX_REPLICAS,
    MAX_SLOTS_PER_POD,
    MIN_POLL_INTERVAL,
    check_target_value,
    listed,
    repeated,
)
from scaler.config.direct import DirectConfig, Quantity, StrictModel
from scaler.errors import quote
from scaler.policy import (
    DEFAULT_IDLE_SECONDS,
    LEGACY_BEHAVIOR,
    MetricSpec,
    PolicySpec,
    SourceType,
    TargetType,
    ZeroRule,
)
from scaler.policy.readings import ALLOWED_TARGETS

_RANGE = re.compile(r"\[(\d+(?:\.\d+)?)(ms|s|m|h)\]")
_RANGE_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class TargetValueConfig(StrictModel):
    """``MetricTarget``: ``type`` and the one matching field."""

    type: TargetType
    value: Quantity | None = Field(default=None, gt=0)
    average_value: Quantity | None = Field(default=None, gt=0)
    average_utilization: int | None = Field(
        default=None, gt=0, le=MAX_INT32, description="percent; int32 as in the HPA"
    )

    @model_validator(mode="after")
    def _one_matching_field(self) -> TargetValueConfig:
        field = _TARGET_FIELDS[self.type]
        given = [name for name in _TARGET_FIELDS.values() if getattr(self, name) is not None]
        if given != [field]:
            raise ValueError(
                f"type {self.type.value} needs exactly the field {to_camel(field)!r}"
                f" (given: {', '.join(to_camel(g) for g in given) or 'none'})"
            )
        if field != "average_utilization":
            check_target_value(to_camel(field), self.number)
        return self

    @property
    def number(self) -> float:
        value = getattr(self, _TARGET_FIELDS[self.type])
        assert isinstance(value, int | float)
        return float(value)


_TARGET_FIELDS = {
    TargetType.VALUE: "value",
    TargetType.AVERAGE_VALUE: "average_value",
    TargetType.UTILIZATION: "average_utilization",
}


class MetricConfig(StrictModel):
    """One metric: a PromQL query and the target it is held to.

    ``type``: External (the query's series are summed into one number), Pods (one
    series per pod, by its ``pod`` label) or Resource (per-pod usage compared with the
    pods' requests of ``resource``).
    """

    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=63)
    type: SourceType = SourceType.EXTERNAL
    query: str = Field(min_length=1, description="PromQL, evaluated each poll")
    target: TargetValueConfig
    resource: str = "cpu"
    direct: DirectConfig | None = None

    @model_validator(mode="after")
    def _direct_only_for_external(self) -> MetricConfig:
        if self.direct is not None and self.type is not SourceType.EXTERNAL:
            raise ValueError(
                f"a direct read sums its series into one number: only for External,"
                f" not {self.type.value}"
            )
        return self

    @model_validator(mode="after")
    def _target_allowed_for_source(self) -> MetricConfig:
        allowed = ALLOWED_TARGETS[self.type]
        if self.target.type not in allowed:
            raise ValueError(
                f"target type {self.target.type.value!r} is not allowed for a {self.type.value}"
                f" metric (allowed: {', '.join(t.value for t in allowed)})"
            )
        return self

    @property
    def reads(self) -> list[str]:
        """Where each poll reads this metric, in words (``scaler config check``)."""
        return ["reads Prometheus (the query)"] if self.direct is None else self.direct.reads

    @property
    def rate_window(self) -> float | None:
        """The ``rate()`` range in the query, seconds (e.g. 30 for ``[30s]``), if any.

        A per-pod rate averages over this window, which decides when a starting pod's
        CPU sample counts (the HPA's metric window).
        """
        match = _RANGE.search(self.query)
        if match is None:
            return None
        return float(match.group(1)) * _RANGE_UNITS[match.group(2)]

    def to_spec(self, *, slots_per_pod: int = 1) -> MetricSpec:
        """The engine's metric. An AverageValue target is per slot: each pod holds
        ``slots_per_pod`` of them, so its per-pod target is that many times the value."""
        number = self.target.number
        if self.target.type is TargetType.AVERAGE_VALUE:
            number *= slots_per_pod
        return MetricSpec(
            name=self.name,
            source=self.type,
            target_type=self.target.type,
            target=number,
            resource=self.resource,
        )


class ScaleToZeroConfig(StrictModel):
    """Opt-in scale to zero (``minReplicas: 0``): KEDA's activation and cooldownPeriod.

    ``metric``: an External metric of this target read from the routers (its
    ``direct`` block has a ``host``), counting the requests queued and in flight: the
    routers hold requests while no pod is ready, so only they see one at zero.
    """

    metric: str = Field(min_length=1, max_length=63)
    idle_seconds: float = Field(
        default=DEFAULT_IDLE_SECONDS,
        ge=1,
        le=86400,
        description="seconds the metric must read 0 at every poll before 1 -> 0",
    )

    def to_rule(self) -> ZeroRule:
        return ZeroRule(self.metric, self.idle_seconds)


class TargetConfig(StrictModel):
    """One scaled Deployment and its policy."""

    namespace: str = Field(min_length=1, max_length=63)
    deployment: str = Field(min_length=1, max_length=253)
    min_replicas: int = Field(default=1, ge=0, description="0 only with scaleToZero")
    scale_to_zero: ScaleToZeroConfig | None = None
    max_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    metrics: list[MetricConfig] = Field(min_length=1, max_length=MAX_METRICS)
    behavior: BehaviorConfig | None = Field(
        default=None,
        description="absent: the HPA's legacy path, as for an HPA without behavior",
    )
    poll_interval: float | None = Field(
        default=None,
        ge=MIN_POLL_INTERVAL,
        le=MAX_POLL_INTERVAL,
        description="seconds; default: the file's pollInterval",
    )
    container: str | None = Field(
        default=None, description="count only this container's CPU request (Utilization)"
    )
    slots_per_pod: int = Field(
        default=1,
        ge=1,
        le=MAX_SLOTS_PER_POD,
        description="requests each pod serves at once (OLLAMA_NUM_PARALLEL); "
        "AverageValue targets are per slot",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TargetConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas {self.min_replicas} is greater than maxReplicas {self.max_replicas}"
            )
        duplicates = repeated(m.name for m in self.metrics)
        if duplicates:
            raise ValueError(f"metric names must be unique: {listed(duplicates)}")
        for metric in self.metrics:
            if metric.target.type is TargetType.AVERAGE_VALUE:  # per slot: times slotsPerPod
                check_target_value(
                    f"metrics {metric.name}: averageValue * slotsPerPod",
                    metric.target.number * self.slots_per_pod,
                )
        self._check_scale_to_zero()
        return self

    def _check_scale_to_zero(self) -> None:
        """``minReplicas: 0`` needs ``scaleToZero``, and its metric must count the
        routers' requests: only a router holds a request while no pod is ready."""
        zero = self.scale_to_zero
        if zero is None:
            if self.min_replicas == 0:
                raise ValueError(
                    "minReplicas 0 needs a scaleToZero block (metric: a router metric, "
                    "idleSeconds) saying when to wake and when to sleep"
                )
            return
        if self.min_replicas != 0:
            raise ValueError(f"scaleToZero is only for minReplicas 0, not {self.min_replicas}")
        metric = next((m for m in self.metrics if m.name == zero.metric), None)
        if metric is None:
            names = ", ".join(m.name for m in self.metrics)
            raise ValueError(
                f"scaleToZero metric {quote(zero.metric)} is not a metric of this target ({names})"
            )
        if (
            metric.type is not SourceType.EXTERNAL
            or metric.direct is None
            or not metric.direct.host
        ):
            raise ValueError(
                f"scaleToZero metric {quote(zero.metric)} must be an External metric read from"
                " the routers (a direct block with a host): only a router holds requests at zero"
            )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.deployment}"

    def zero_rule(self) -> ZeroRule | None:
        """The scale-to-zero rule, for ``minReplicas: 0``."""
        return None if self.scale_to_zero is None else self.scale_to_zero.to_rule()

    def to_policy(self) -> PolicySpec:
        """The engine's spec. With ``minReplicas: 0`` its minimum is 1: the HPA's math
        never sees 0, the zero rule decides 0 <-> 1 around it (``zero_rule``)."""
        return PolicySpec(
            min_replicas=max(1, self.min_replicas),
            max_replicas=self.max_replicas,
            metrics=tuple(m.to_spec(slots_per_pod=self.slots_per_pod) for m in self.metrics),
            behavior=LEGACY_BEHAVIOR if self.behavior is None else self.behavior.to_behavior(),
        )
