"""The pure scaling policy: the Kubernetes HPA's rules with time as a parameter.

No asyncio, no I/O, no clock reads. ``step`` is the entry point for one target's
poll (the overrides around ``decide``); the state it returns goes into the next call.
"""

from scaler.policy.behavior import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    DEFAULT_TOLERANCE,
    LEGACY_BEHAVIOR,
    MISSION_BEHAVIOR,
    Behavior,
    PolicyType,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
)
from scaler.policy.decision import Decision, MetricProposal, Reason
from scaler.policy.engine import (
    Observation,
    PolicySpec,
    context,
    decide,
    proposal_valid_until,
    propose,
    propose_metric,
    record_scale,
    remember,
)
from scaler.policy.history import History, Recommendation, ScaleEvent
from scaler.policy.milli import format_milli
from scaler.policy.overrides import (
    PAUSE_ANNOTATION,
    PIN_ANNOTATION,
    Fallback,
    hpa_conflict,
    manual_control,
    with_fallback,
)
from scaler.policy.pods import Pod, PodPhase, PodSample
from scaler.policy.readings import (
    MetricReading,
    MetricSpec,
    PodValues,
    SourceType,
    TargetType,
    TotalValue,
    Unavailable,
)
from scaler.policy.step import Seen, StepState, TargetSpec, record_scaled, step
from scaler.policy.zero import DEFAULT_IDLE_SECONDS, ZeroRule

__all__ = [
    "DEFAULT_IDLE_SECONDS",
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "DEFAULT_TOLERANCE",
    "LEGACY_BEHAVIOR",
    "MISSION_BEHAVIOR",
    "PAUSE_ANNOTATION",
    "PIN_ANNOTATION",
    "Behavior",
    "Decision",
    "Fallback",
    "History",
    "MetricProposal",
    "MetricReading",
    "MetricSpec",
    "Observation",
    "Pod",
    "PodPhase",
    "PodSample",
    "PodValues",
    "PolicySpec",
    "PolicyType",
    "Reason",
    "Recommendation",
    "ScaleEvent",
    "ScalingPolicy",
    "ScalingRules",
    "Seen",
    "SelectPolicy",
    "SourceType",
    "StepState",
    "TargetSpec",
    "TargetType",
    "TotalValue",
    "Unavailable",
    "ZeroRule",
    "context",
    "decide",
    "format_milli",
    "hpa_conflict",
    "manual_control",
    "proposal_valid_until",
    "propose",
    "propose_metric",
    "record_scale",
    "record_scaled",
    "remember",
    "step",
    "with_fallback",
]
