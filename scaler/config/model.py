"""The configuration file's top level: where Prometheus is, how often to poll, active
or shadow mode, the fallback, leader election, and the targets (``targets``). Keys are camelCase
as in Kubernetes manifests. Unknown keys are errors, so a typo never silently falls
back to a default; every error names the key and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from scaler.config.behavior import BehaviorConfig, PolicyConfig, RulesConfig
from scaler.config.bounds import (
    MAX_FAILURE_THRESHOLD,
    MAX_POLL_INTERVAL,
    MAX_REPLICAS,
    MAX_STALENESS,
    MAX_TARGETS,
    MIN_POLL_INTERVAL,
    MIN_QUERY_TIMEOUT,
    listed,
    repeated,
)
from scaler.config.direct import DirectConfig, StrictModel
from scaler.config.problems import describe
from scaler.config.targets import (
    MetricConfig,
    ScaleToZeroConfig,
    TargetConfig,
    TargetValueConfig,
)
from scaler.errors import ConfigError
from scaler.policy import Fallback, TargetSpec

DEFAULT_CONFIG_PATH = Path(__file__).parents[1] / "default_config.yaml"
"""The mission's configuration: the Ollama Deployment, 2..10 replicas, the seed HPA's
behavior, the queue and CPU metrics."""


class Mode(StrEnum):
    """``active`` patches Deployments; ``shadow`` decides, logs and exports only."""

    ACTIVE = "active"
    SHADOW = "shadow"


class WatchScope(StrEnum):
    """What the Kubernetes caches watch: ``namespace`` (3 watches per namespace a target
    names; a Role in each), ``cluster`` (3 watches in all, of every namespace; needs a
    ClusterRole), ``auto`` (cluster above 10 namespaces: ``scaler.kube.cache``)."""

    AUTO = "auto"
    NAMESPACE = "namespace"
    CLUSTER = "cluster"


class FallbackConfig(StrictModel):
    """Replicas to hold after ``failureThreshold`` polls in a row without any metric.

    A floor, never a cut: with more replicas running, the controller keeps them.
    """

    replicas: int = Field(ge=1, le=MAX_REPLICAS)
    failure_threshold: int = Field(
        default=3, ge=1, le=MAX_FAILURE_THRESHOLD, description="consecutive failed polls"
    )

    def to_policy(self) -> Fallback:
        return Fallback(self.replicas, self.failure_threshold)


class LeaderElectionConfig(StrictModel):
    """A ``coordination.k8s.io`` Lease so that only one replica of scaler acts."""

    enabled: bool = True
    lease_name: str = Field(default="scaler", min_length=1, max_length=253)
    namespace: str | None = Field(default=None, description="default: scaler's own")
    lease_duration_seconds: float = Field(default=10.0, gt=0, le=60)
    retry_period_seconds: float = Field(default=2.0, gt=0, le=30)

    @model_validator(mode="after")
    def _retry_within_lease(self) -> LeaderElectionConfig:
        if self.retry_period_seconds >= self.lease_duration_seconds:
            raise ValueError(
                f"retryPeriodSeconds {self.retry_period_seconds:g} must be shorter than "
                f"leaseDurationSeconds {self.lease_duration_seconds:g}"
            )
        return self


class ScalerConfig(StrictModel):
    """The whole file. Seconds for every duration."""

    prometheus_url: str = Field(
        default="http://prometheus:9090", pattern=r"^https?://[^\s/]+(/\S*)?$"
    )
    poll_interval: float = Field(
        default=2.0,
        ge=MIN_POLL_INTERVAL,
        le=MAX_POLL_INTERVAL,
        description="seconds between polls",
    )
    query_timeout: float | None = Field(
        default=None, ge=MIN_QUERY_TIMEOUT, description="seconds; default 80 % of pollInterval"
    )
    staleness: float = Field(
        default=10.0, gt=0, le=MAX_STALENESS, description="seconds a sample stays usable"
    )
    push_min_interval: float = Field(
        default=0.05,
        ge=0.01,
        le=5.0,
        description="seconds between two decisions a target's pushed queue changes wake",
    )
    mode: Mode = Mode.ACTIVE
    watch_scope: WatchScope = WatchScope.AUTO
    fallback: FallbackConfig | None = None
    leader_election: LeaderElectionConfig = LeaderElectionConfig()
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="/metrics, /healthz")
    metrics_host: str = "0.0.0.0"
    targets: list[TargetConfig] = Field(min_length=1, max_length=MAX_TARGETS)

    @property
    def timeout(self) -> float:
        """The query timeout in force: always below the shortest poll interval."""
        return self.query_timeout or 0.8 * self.shortest_poll_interval

    @property
    def shortest_poll_interval(self) -> float:
        return min(t.poll_interval or self.poll_interval for t in self.targets)

    def step_spec(self, target: TargetConfig) -> TargetSpec:
        """What ``scaler.policy.step`` needs for ``target``: its engine spec, the
        fallback, and whether an HPA beside it makes it stand by (not in shadow mode,
        where nothing is patched and the HPA beside us is the point)."""
        return TargetSpec(
            target.to_policy(),
            None if self.fallback is None else self.fallback.to_policy(),
            yield_to_hpa=self.mode is not Mode.SHADOW,
            zero=target.zero_rule(),
        )

    @model_validator(mode="after")
    def _timeout_below_poll(self) -> ScalerConfig:
        if self.query_timeout is not None and self.query_timeout >= self.shortest_poll_interval:
            raise ValueError(
                f"queryTimeout {self.query_timeout:g} must be shorter than the poll interval "
                f"{self.shortest_poll_interval:g}"
            )
        return self

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, targets: list[TargetConfig]) -> list[TargetConfig]:
        duplicates = repeated(t.key for t in targets)
        if duplicates:
            raise ValueError(f"each Deployment may appear once: {listed(duplicates)}")
        return targets


def parse_config(data: Mapping[str, Any], *, source: str | None = None) -> ScalerConfig:
    """Validate a mapping; raise ConfigError naming every bad key and value."""
    try:
        return ScalerConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe(error, _KNOWN_KEYS), source=source) from error


_KNOWN_KEYS = frozenset(
    to_camel(name)
    for model in (
        PolicyConfig,
        RulesConfig,
        BehaviorConfig,
        TargetValueConfig,
        MetricConfig,
        TargetConfig,
        ScaleToZeroConfig,
        DirectConfig,
        FallbackConfig,
        LeaderElectionConfig,
        ScalerConfig,
    )
    for name in model.model_fields
)
"""Every key the file may hold, for "did you mean" on an unknown one."""
