"""The ``behavior`` block, verbatim from ``autoscaling/v2``: scaling policies and rules.

``HorizontalPodAutoscalerBehavior`` with its ``HPAScalingRules`` and
``HPAScalingPolicy``, keys camelCase as in an HPA manifest. An omitted field takes the
HPA's default (``copyHPAScalingRules``), so the engine always gets a whole ``Behavior``.
"""

from __future__ import annotations

from pydantic import Field

from scaler.config.bounds import MAX_INT32
from scaler.config.direct import Quantity, StrictModel
from scaler.policy import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Behavior,
    PolicyType,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
)


class PolicyConfig(StrictModel):
    """``HPAScalingPolicy``: at most ``value`` pods or percent per ``periodSeconds``."""

    type: PolicyType
    value: int = Field(gt=0, le=MAX_INT32, description="pods or percent; int32 as in the HPA")
    period_seconds: int = Field(gt=0, le=1800, description="seconds, 1..1800 as in the HPA")


class RulesConfig(StrictModel):
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


class BehaviorConfig(StrictModel):
    """``HorizontalPodAutoscalerBehavior``, verbatim."""

    scale_up: RulesConfig | None = None
    scale_down: RulesConfig | None = None

    def to_behavior(self) -> Behavior:
        up = (self.scale_up or RulesConfig()).merged_with(DEFAULT_SCALE_UP)
        down = (self.scale_down or RulesConfig()).merged_with(DEFAULT_SCALE_DOWN)
        return Behavior(scale_up=up, scale_down=down)
