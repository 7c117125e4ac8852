"""What a metric source returns, the ways it can fail, and the Protocol it meets.

A source answers with a ``Sample`` (one number) or ``PodSamples`` (one number per
pod), or raises one of the ``MetricUnavailable`` types below, never a sentinel. Each
failure type has a ``kind``: a short fixed string, safe as a metric label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol

from scaler.errors import ScalerError


@dataclass(frozen=True, slots=True)
class Sample:
    """A value and the time it describes (unix seconds)."""

    value: float
    timestamp: float


@dataclass(frozen=True, slots=True)
class PodSamples:
    """Values by pod name, e.g. CPU cores per pod."""

    samples: Mapping[str, Sample]


class MetricUnavailable(ScalerError):
    """A metric could not be read this time. ``kind`` names the failure."""

    kind: ClassVar[str] = "unavailable"


class EmptyResult(MetricUnavailable):
    """The query returned no series (e.g. the scraped pods are gone)."""

    kind = "empty"


class NotFinite(MetricUnavailable):
    """The value is NaN or infinite."""

    kind = "not_finite"


class MultipleSeries(MetricUnavailable):
    """Several series came back where one was expected (the query needs a sum())."""

    kind = "multiple_series"


class MissingLabel(MetricUnavailable):
    """A per-pod query returned a series without a ``pod`` label, or a pod twice."""

    kind = "missing_label"


class HttpStatus(MetricUnavailable):
    """Prometheus answered with a non-2xx status (bad query, overload...)."""

    kind = "http_status"


class QueryTimeout(MetricUnavailable):
    """No answer within the timeout."""

    kind = "timeout"


class ConnectionFailed(MetricUnavailable):
    """Prometheus could not be reached."""

    kind = "connection"


class BadResponse(MetricUnavailable):
    """The answer was not the JSON Prometheus's HTTP API documents."""

    kind = "bad_response"


class StaleSample(MetricUnavailable):
    """The sample is older than the staleness bound."""

    kind = "stale"


class ImplausibleValue(MetricUnavailable):
    """A value no queue, CPU or in-flight count can have: negative, or beyond
    ``MAX_PLAUSIBLE``. The metric counts as missing, so it never scales down."""

    kind = "implausible"


class IncompleteReading(MetricUnavailable):
    """An exporter answered with only some of the series to sum: counted as unread."""

    kind = "incomplete"


MAX_PLAUSIBLE: Final = 1e12
"""The largest value a reading may have: far beyond any queue, CPU cores or requests
in flight, and small enough that its milli-units (x 1000) are exact in a float (below
2^53) and fit the int64 the HPA computes in."""


def plausible(value: float, what: str) -> float:
    """``value`` if a queue, CPU or in-flight count can have it (0..``MAX_PLAUSIBLE``);
    else ``ImplausibleValue`` saying what returned it. NaN and infinities are
    ``NotFinite``: check those first."""
    if 0.0 <= value <= MAX_PLAUSIBLE:
        return value
    raise ImplausibleValue(
        f"{what} {value:g}, which no queue, CPU or in-flight count can be "
        f"(0..{MAX_PLAUSIBLE:g}); the metric counts as missing"
    )


FAILURE_KINDS: tuple[str, ...] = tuple(
    cls.kind
    for cls in (
        EmptyResult,
        NotFinite,
        MultipleSeries,
        MissingLabel,
        HttpStatus,
        QueryTimeout,
        ConnectionFailed,
        BadResponse,
        StaleSample,
        ImplausibleValue,
        IncompleteReading,
    )
)


class MetricSource(Protocol):
    """Evaluates queries at a point in time. ``now`` is unix seconds."""

    async def value(self, query: str, *, now: float) -> Sample:
        """Exactly one series, as one number."""
        ...

    async def per_pod(self, query: str, *, now: float) -> PodSamples:
        """One series per pod, keyed by the series' ``pod`` label."""
        ...
