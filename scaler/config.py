"""The configuration file: scaling targets with HPA-syntax metrics and behavior.

Keys are camelCase as in an HPA manifest, and the ``behavior`` block is accepted
verbatim from ``autoscaling/v2``. Every field says its unit. Unknown keys are errors,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from scaler.errors import ConfigError
from scaler.policy import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Behavior,
    MetricSpec,
    PolicySpec,
    PolicyType,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    SourceType,
    TargetType,
)
from scaler.policy.metrics import ALLOWED_TARGETS
from scaler.quantity import parse_quantity

Quantity = Annotated[float, BeforeValidator(parse_quantity)]

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.yaml")


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class PolicyConfig(_Model):
    """``HPAScalingPolicy``: at most ``value`` pods or percent per ``periodSeconds``."""

    type: PolicyType
    value: int = Field(gt=0)
    period_seconds: int = Field(gt=0, le=1800, description="seconds, 1..1800 as in the HPA")


class RulesConfig(_Model):
    """``HPAScalingRules``; every omitted field takes the HPA's default."""

    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    select_policy: SelectPolicy | None = None
    policies: list[PolicyConfig] | None = Field(default=None, min_length=1)
    tolerance: Quantity | None = Field(default=None, ge=0)

    def merged_with(self, default: ScalingRules) -> ScalingRules:
        """``copyHPAScalingRules``: the fields given here override the defaults."""
        policies = default.policies
        if self.policies is not None:
            policies = tuple(
                ScalingPolicy(p.type, p.value, p.period_seconds) for p in self.policies
            )
        return ScalingRules(
            stabilization_window_seconds=(
                default.stabilization_window_seconds
                if self.stabilization_window_seconds is None
                else self.stabilization_window_seconds
            ),
            select_policy=self.select_policy or default.select_policy,
            policies=policies,
            tolerance=default.tolerance if self.tolerance is None else self.tolerance,
        )


class BehaviorConfig(_Model):
    """``HorizontalPodAutoscalerBehavior``, verbatim."""

    scale_up: RulesConfig | None = None
    scale_down: RulesConfig | None = None

    def to_behavior(self) -> Behavior:
        up = (self.scale_up or RulesConfig()).merged_with(DEFAULT_SCALE_UP)
        down = (self.scale_down or RulesConfig()).merged_with(DEFAULT_SCALE_DOWN)
        return Behavior(scale_up=up, scale_down=down)


class TargetValueConfig(_Model):
    """``MetricTarget``: ``type`` and the one matching field."""

    type: TargetType
    value: Quantity | None = Field(default=None, gt=0)
    average_value: Quantity | None = Field(default=None, gt=0)
    average_utilization: int | None = Field(default=None, gt=0, description="percent")

    @model_validator(mode="after")
    def _one_matching_field(self) -> TargetValueConfig:
        field = _TARGET_FIELDS[self.type]
        given = [name for name in _TARGET_FIELDS.values() if getattr(self, name) is not None]
        if given != [field]:
            raise ValueError(
                f"type {self.type.value} needs exactly the field {to_camel(field)!r}"
                f" (given: {', '.join(to_camel(g) for g in given) or 'none'})"
            )
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


class MetricConfig(_Model):
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

    @model_validator(mode="after")
    def _target_allowed_for_source(self) -> MetricConfig:
        allowed = ALLOWED_TARGETS[self.type]
        if self.target.type not in allowed:
            raise ValueError(
                f"target type {self.target.type.value!r} is not allowed for a {self.type.value}"
                f" metric (allowed: {', '.join(t.value for t in allowed)})"
            )
        return self

    def to_spec(self) -> MetricSpec:
        return MetricSpec(
            name=self.name,
            source=self.type,
            target_type=self.target.type,
            target=self.target.number,
            resource=self.resource,
        )


class TargetConfig(_Model):
    """One scaled Deployment and its policy."""

    namespace: str = Field(min_length=1, max_length=63)
    deployment: str = Field(min_length=1, max_length=253)
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(ge=1)
    metrics: list[MetricConfig] = Field(min_length=1)
    behavior: BehaviorConfig = BehaviorConfig()
    poll_interval: float | None = Field(
        default=None, ge=0.5, description="seconds; default: the file's pollInterval"
    )

    @model_validator(mode="after")
    def _consistent(self) -> TargetConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas {self.min_replicas} is greater than maxReplicas {self.max_replicas}"
            )
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metric names must be unique: {', '.join(duplicates)}")
        return self

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.deployment}"

    def to_policy(self) -> PolicySpec:
        return PolicySpec(
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            metrics=tuple(m.to_spec() for m in self.metrics),
            behavior=self.behavior.to_behavior(),
        )


class ScalerConfig(_Model):
    """The whole file: targets and the default poll interval (seconds)."""

    poll_interval: float = Field(default=2.0, ge=0.5, description="seconds between polls")
    targets: list[TargetConfig] = Field(min_length=1)

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
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"cannot read the file: {error.strerror}"], source=str(path)) from error
    except yaml.YAMLError as error:
        raise ConfigError([f"not valid YAML: {error}"], source=str(path)) from error
    if not isinstance(data, dict):
        got = type(data).__name__
        raise ConfigError([f"the file must hold a mapping, not {got}"], source=str(path))
    return parse_config(data, source=str(path))


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
        ScalerConfig,
    )
    for name in model.model_fields
}


def _suggest(loc: tuple[int | str, ...]) -> str:
    name = str(loc[-1]) if loc else ""
    close = difflib.get_close_matches(name, sorted(_KNOWN_KEYS), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
