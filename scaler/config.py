"""The configuration file ``scaler run`` and ``scaler simulate --config`` read.

Top level: where Prometheus is, how often to poll, active or shadow mode, the
fallback, leader election, and the targets (``config_models``). Keys are camelCase
as in Kubernetes manifests. Unknown keys are errors, so a typo never silently falls
back to a default; every error names the key and the value.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from scaler.config_bounds import (
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
from scaler.config_direct import DirectConfig, StrictModel
from scaler.config_models import (
    BehaviorConfig,
    MetricConfig,
    PolicyConfig,
    RulesConfig,
    TargetConfig,
    TargetValueConfig,
)
from scaler.config_yaml import read_yaml
from scaler.errors import QUOTE_LIMIT, ConfigError, quote

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "FallbackConfig",
    "LeaderElectionConfig",
    "MetricConfig",
    "Mode",
    "ScalerConfig",
    "TargetConfig",
    "load_config",
    "parse_config",
    "read_yaml",
]

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.yaml")


class Mode(StrEnum):
    """``active`` patches Deployments; ``shadow`` decides, logs and exports only."""

    ACTIVE = "active"
    SHADOW = "shadow"


class FallbackConfig(StrictModel):
    """Replicas to hold after ``failureThreshold`` polls in a row without any metric.

    A floor, never a cut: with more replicas running, the controller keeps them.
    """

    replicas: int = Field(ge=1, le=MAX_REPLICAS)
    failure_threshold: int = Field(
        default=3, ge=1, le=MAX_FAILURE_THRESHOLD, description="consecutive failed polls"
    )


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
    mode: Mode = Mode.ACTIVE
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
        raise ConfigError(_problems(error), source=source) from error


def load_config(path: Path | str | None = None) -> ScalerConfig:
    """Load a YAML file, or the built-in default (the mission's Ollama target)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    return parse_config(read_yaml(path), source=str(path))


MAX_PROBLEMS = 20
"""Problems an error lists; 20,000 bad targets must not make a 20,000-line message."""


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith(("function-", "tagged-union")):
            continue
        else:
            name = part if len(part) <= QUOTE_LIMIT else quote(part)  # a key can be huge too
            text += f".{name}" if text else name
    return text or "(top level)"


def _problems(error: ValidationError) -> list[str]:
    items = error.errors(include_url=False)
    problems = [_problem(item) for item in items[:MAX_PROBLEMS]]
    if len(items) > MAX_PROBLEMS:
        problems.append(f"… and {len(items) - MAX_PROBLEMS} more problems")
    return problems


def _problem(item: ErrorDetails) -> str:
    key = _location(item["loc"])
    kind = item["type"]
    value = quote(item.get("input"))
    ctx = item.get("ctx") or {}
    if kind == "enum":
        choices = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"{key}: {value} is not one of {choices}"
    if kind == "extra_forbidden":
        return f"{key}: unknown key{_suggest(item['loc'])}"
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "value_error":
        return f"{key}: {item['msg'].removeprefix('Value error, ')}"
    return f"{key}: {item['msg']} (got {value})"


_KNOWN_KEYS = {
    to_camel(name)
    for model in (
        PolicyConfig,
        RulesConfig,
        BehaviorConfig,
        TargetValueConfig,
        MetricConfig,
        TargetConfig,
        DirectConfig,
        FallbackConfig,
        LeaderElectionConfig,
        ScalerConfig,
    )
    for name in model.model_fields
}


def _suggest(loc: tuple[int | str, ...]) -> str:
    name = str(loc[-1]) if loc else ""
    if len(name) > 64:  # no key is this long; difflib's cost grows with the length
        return ""
    close = difflib.get_close_matches(name, sorted(_KNOWN_KEYS), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
