"""Integer milli-units as the HPA computes with them: Go's int64 and its edges.

The HPA reads every quantity with ``MilliValue()`` (an int64) and averages in int64
or, where int64 would overflow, exactly with ``big.Int``. Python ints are exact, so
what matters is where Go saturates: a quantity caps at the int64 range, and a float
converted back to int64 is capped as the HPA caps it (``float64(MaxInt64)`` is 2^63,
one past the range).
"""

from __future__ import annotations

import math

MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)

# DecimalSI suffixes by power of ten, as ``Quantity.String()`` picks them.
_SUFFIXES = {-3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


def clamp_int64(value: int) -> int:
    return max(MIN_INT64, min(MAX_INT64, value))


def milli(value: float) -> int:
    """A finite value in milli-units, rounded, within int64 (a quantity's cap)."""
    return clamp_int64(round(value * 1000))


def go_int64(value: float) -> int:
    """``int64(value)``: truncated toward zero, capped at the int64 range (the cap
    upstream writes out where it converts a float usage back). NaN gives 0."""
    if math.isnan(value):
        return 0
    if value >= 2.0**63:
        return MAX_INT64
    if value < -(2.0**63):
        return MIN_INT64
    return int(value)


def format_milli(value: int) -> str:
    """A milli-value as ``resource.NewMilliQuantity(value, DecimalSI).String()``
    writes it: the largest suffix that keeps the number whole ("1500m", "2", "1k")."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    number, exponent = abs(value), -3
    while number % 1000 == 0 and exponent < 18:
        number //= 1000
        exponent += 3
    return f"{sign}{number}{_SUFFIXES[exponent]}"
