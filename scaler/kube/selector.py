"""A Deployment's ``spec.selector`` as the ``labelSelector`` string a pod list takes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def label_selector(selector: Mapping[str, Any] | None) -> str:
    """``metav1.LabelSelectorAsSelector(selector).String()``: what the Deployment's
    scale subresource serves as ``status.selector``.

    ``matchLabels`` become ``key=value``; ``matchExpressions`` become ``key in (a,b)``,
    ``key notin (a,b)``, ``key`` (Exists) and ``!key`` (DoesNotExist); all joined by
    commas (AND), sorted by key, with the values of a set sorted. An empty or missing
    selector gives ``""``, which selects everything. Raises ValueError on an operator
    the apiserver would not have accepted.
    """
    if not selector:
        return ""
    parts = [(key, f"{key}={value}") for key, value in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or ():
        key, op = expr.get("key"), expr.get("operator")
        values = ",".join(sorted(expr.get("values") or ()))
        match op:
            case "In":
                text = f"{key} in ({values})"
            case "NotIn":
                text = f"{key} notin ({values})"
            case "Exists":
                text = f"{key}"
            case "DoesNotExist":
                text = f"!{key}"
            case _:
                raise ValueError(f"{op!r} is not a valid label selector operator")
        parts.append((key, text))
    parts.sort(key=lambda part: part[0])  # stable: a key's matchLabels entry comes first
    return ",".join(text for _, text in parts)
