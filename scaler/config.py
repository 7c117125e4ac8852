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

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from scaler.config_models import (
    BehaviorConfig,
    DirectConfig,
    MetricConfig,
    PolicyConfig,
    RulesConfig,
    StrictModel,
    TargetConfig,
    TargetValueConfig,
)
from scaler.errors import ConfigError

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

    replicas: int = Field(ge=1)
    failure_threshold: int = Field(default=3, ge=1, description="consecutive failed polls")


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
    poll_interval: float = Field(default=2.0, ge=0.5, description="seconds between polls")
    query_timeout: float | None = Field(
        default=None, gt=0, description="seconds; default 80 % of pollInterval"
    )
    staleness: float = Field(default=10.0, gt=0, description="seconds a sample stays usable")
    mode: Mode = Mode.ACTIVE
    fallback: FallbackConfig | None = None
    leader_election: LeaderElectionConfig = LeaderElectionConfig()
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="/metrics, /healthz")
    metrics_host: str = "0.0.0.0"
    targets: list[TargetConfig] = Field(min_length=1)

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
        keys = [t.key for t in targets]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"each Deployment may appear once: {', '.join(duplicates)}")
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


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping; ConfigError naming the file otherwise."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"cannot read the file: {error.strerror}"], source=str(path)) from error
    except yaml.YAMLError as error:
        raise ConfigError([f"not valid YAML: {error}"], source=str(path)) from error
    if not isinstance(data, dict):
        got = type(data).__name__
        raise ConfigError([f"the file must hold a mapping, not {got}"], source=str(path))
    return data


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith(("function-", "tagged-union")):
            continue
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        key = _location(item["loc"])
        kind = item["type"]
        value = item.get("input")
        ctx = item.get("ctx") or {}
        if kind == "enum":
            choices = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
            problems.append(f"{key}: {value!r} is not one of {choices}")
        elif kind == "extra_forbidden":
            problems.append(f"{key}: unknown key{_suggest(item['loc'])}")
        elif kind == "missing":
            problems.append(f"{key}: required key is missing")
        elif kind == "value_error":
            problems.append(f"{key}: {item['msg'].removeprefix('Value error, ')}")
        else:
            problems.append(f"{key}: {item['msg']} (got {value!r})")
    return problems


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
    close = difflib.get_close_matches(name, sorted(_KNOWN_KEYS), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
