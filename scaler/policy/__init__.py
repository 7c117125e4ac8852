"""The pure scaling policy: the Kubernetes HPA's rules with time as a parameter.

No asyncio, no I/O, no clock reads. ``decide`` is the entry point; the history it
returns goes into the next call.
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
from scaler.policy.metrics import (
    MetricReading,
    MetricSpec,
    PodValues,
    SourceType,
    TargetType,
    TotalValue,
    Unavailable,
)
from scaler.policy.milli import format_milli
from scaler.policy.pods import Pod, PodPhase, PodSample

__all__ = [
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "DEFAULT_TOLERANCE",
    "LEGACY_BEHAVIOR",
    "MISSION_BEHAVIOR",
    "Behavior",
    "Decision",
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
    "SelectPolicy",
    "SourceType",
    "TargetType",
    "TotalValue",
    "Unavailable",
    "context",
    "decide",
    "format_milli",
    "proposal_valid_until",
    "propose",
    "propose_metric",
    "record_scale",
    "remember",
]
