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


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether a Deployment's ``spec.selector`` selects an object with ``labels``:
    what the apiserver does with ``label_selector(selector)``, done client-side on the
    pods of a watch-fed cache.

    Every ``matchLabels`` pair must be present; ``In``: the key is present with one of
    the values; ``NotIn``: absent or none of the values; ``Exists``/``DoesNotExist``.
    An empty or missing selector selects everything (callers refuse it first). Raises
    ValueError on an operator the apiserver would not have accepted.
    """
    have = labels or {}
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if have.get(key) != value:
            return False
    return all(_requirement(expr, have) for expr in selector.get("matchExpressions") or ())


def _requirement(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op = str(expr.get("key")), expr.get("operator")
    present = key in labels
    match op:
        case "In":
            return present and labels[key] in (expr.get("values") or ())
        case "NotIn":
            return not present or labels[key] not in (expr.get("values") or ())
        case "Exists":
            return present
        case "DoesNotExist":
            return not present
        case _:
            raise ValueError(f"{op!r} is not a valid label selector operator")
