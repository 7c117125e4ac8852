"""The bounds a configuration's numbers must keep, and why each is where it is.

A value that validates must also be one the controller can poll and decide with:
finite, representable in the HPA's milli-units, and small enough that a loop, a
health window or a simulated Deployment built from it stays bounded. Where the
HPA's API has a bound (``autoscaling/v2`` validation, int32 fields), it is the
same here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from scaler.errors import quote
from scaler.policy.calculator import milli
from scaler.quantity import parse_quantity

MAX_INT32 = 2**31 - 1
"""The HPA's replica counts, policy values and utilization percent are int32."""
MAX_REPLICAS = MAX_INT32
"""maxReplicas (and a fallback's replicas): the scale subresource's replicas is an
int32, so a larger count could never be patched. ``scaler simulate`` keeps its own,
lower bound on the pods it models."""
MAX_TARGETS = 1_000
"""Deployments one controller scales; each is polled every interval."""
MAX_METRICS = 32
"""Metrics of one target; each is a query per poll."""
MAX_SLOTS_PER_POD = 1_024
"""slotsPerPod (OLLAMA_NUM_PARALLEL)."""
MIN_POLL_INTERVAL = 0.5
MAX_POLL_INTERVAL = 300.0
"""Seconds between polls: at least 0.5 (Prometheus and the API server are asked
every poll), at most 300 (the health window is a few intervals: a longer one would
leave a stalled controller looking healthy for hours)."""
MIN_QUERY_TIMEOUT = 0.1
"""Seconds a query may take, at least: below it every query times out, and a
controller that validates would never read a metric."""
MAX_STALENESS = 3_600.0
"""Seconds a sample stays usable."""
MAX_FAILURE_THRESHOLD = 1_000
"""Polls in a row without a metric before the fallback holds its floor."""
MAX_QUANTITY = 9e15
"""The largest target value: its milli-units (9e18) fit an int64, as the HPA's
``Quantity.MilliValue()`` must (int64 ends at about 9.22e18)."""
MAX_QUANTITY_TEXT = 64
"""Characters of a quantity: longer text is not one, and is not echoed whole."""


def quantity(value: object) -> float:
    """A number or a Kubernetes quantity string (``parse_quantity``), refusing
    text too long to be one before it is parsed or quoted."""
    if isinstance(value, str) and len(value) > MAX_QUANTITY_TEXT:
        raise ValueError(f"{quote(value)} is not a number or a Kubernetes quantity")
    return parse_quantity(value)


def check_target_value(key: str, value: float) -> None:
    """A Value or AverageValue target the calculator can divide by: at least one
    milli-unit once rounded as the HPA rounds (0.0004 becomes 0, and every poll would
    divide by it), at most ``MAX_QUANTITY``. Non-finite values never get here."""
    if milli(value) < 1:
        raise ValueError(
            f"{key} {value:g} is below 1m (0.001), the smallest quantity the HPA's milli-units hold"
        )
    if value > MAX_QUANTITY:
        raise ValueError(f"{key} {value:g} is above {MAX_QUANTITY:g} (its milli-units overflow)")


def repeated(names: Iterable[str]) -> list[str]:
    """The names that occur more than once, sorted; linear in their count (20,000
    targets are checked in milliseconds, not the seconds a quadratic scan takes)."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def listed(names: list[str], limit: int = 10) -> str:
    """Names for an error message: the first ``limit``, then how many in all."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names)} in all)"
