"""Kubernetes quantities ("500m", "2", "1.5k", "64Mi") as plain numbers."""

from __future__ import annotations

import re

_SUFFIXES = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}
_PATTERN = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def parse_quantity(value: object) -> float:
    """A number or a Kubernetes quantity string, as a float.

    Raises ValueError naming the value when it is neither.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number or a Kubernetes quantity")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _PATTERN.match(value.strip())
        if match:
            return float(match.group(1)) * _SUFFIXES[match.group(2) or ""]
    raise ValueError(f"{value!r} is not a number or a Kubernetes quantity (e.g. 500m, 2, 1.5k)")
