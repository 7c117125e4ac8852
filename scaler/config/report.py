"""What ``scaler config check`` says about a configuration: where it was read from,
each top-level setting with where its value came from, and each target's policy with
all defaults filled in, as the controller will apply it."""

from __future__ import annotations

import json

from scaler.config.loader import Explained
from scaler.policy import Behavior, ScalingRules
from scaler.policy.legacy import describe_legacy
from scaler.policy.readings import reported


def describe(explained: Explained) -> list[str]:
    """What ``scaler config check`` prints: the file, each setting and where it came
    from, and each target's policy as the controller will apply it."""
    lines = []
    config = explained.config
    lines.append(f"{explained.path} ({explained.path_from}): valid")
    lines += _describe_settings(explained)
    for target in config.targets:
        policy = target.to_policy()
        lines.append(f"{target.key}: {target.min_replicas}..{policy.max_replicas} replicas")
        zero = target.zero_rule()
        if zero is not None:  # the engine's own minimum is then 1 (scaler/policy/zero.py)
            lines.append(
                f"  scale to zero: 0 -> 1 at once when {zero.metric} > 0; 1 -> 0 once "
                f"{zero.metric} has read 0 for {zero.idle_seconds:g} s"
            )
        for metric, spec in zip(target.metrics, policy.metrics, strict=True):
            lines.append(
                f"  metric {spec.name}: {spec.source.value}, "
                f"{spec.target_type.value} {spec.target:g}"
            )
            lines.append(f"    reports {reported(spec)}")
            lines += [f"    {line}" for line in metric.reads]
        lines += _describe_behavior(policy.behavior)
    return lines


def _describe_settings(explained: Explained) -> list[str]:
    """Each top-level setting, its value in force and where it came from."""
    values = explained.config.model_dump(by_alias=True, exclude={"targets"}, mode="json")
    lines = []
    for key, origin in explained.origins.items():
        if key not in values:
            continue
        value = values[key]
        parts = value.items() if isinstance(value, dict) else [("", value)]
        for part, item in parts:
            shown = "unset" if item is None else item if isinstance(item, str) else json.dumps(item)
            lines.append(f"  {key}{'.' if part else ''}{part}: {shown} ({origin})")
    return lines


def _describe_rules(name: str, rules: ScalingRules) -> list[str]:
    policies = ", ".join(
        f"{p.value}{'%' if p.type.value == 'Percent' else ' pods'} per {p.period_seconds}s"
        for p in rules.policies
    )
    return [
        f"  {name}: window {rules.stabilization_window_seconds}s, "
        f"select {rules.select_policy.value}, tolerance {rules.tolerance:g}, "
        f"policies: {policies}"
    ]


def _describe_behavior(behavior: Behavior) -> list[str]:
    if behavior.legacy:
        down = behavior.scale_down
        return [f"  {describe_legacy(down.stabilization_window_seconds, down.tolerance)}"]
    return _describe_rules("scaleUp", behavior.scale_up) + _describe_rules(
        "scaleDown", behavior.scale_down
    )
