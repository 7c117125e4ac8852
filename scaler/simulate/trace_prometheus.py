"""Build a load trace from a request rate recorded in Prometheus.

One range query (``/api/v1/query_range``) from ``start`` to ``end`` every ``step``
seconds. The query must give one series in requests/s, e.g.
``sum(rate(ollama_proxy_requests_total[1m]))``. Evaluation step ``i`` (at
``start + i * step``) becomes the interval ``[i * step, (i + 1) * step)`` of the trace,
with Poisson arrivals of that rate drawn with the seed, and default chat tokens.
Steps with no sample or NaN (no traffic, a scrape gap) count as 0 requests/s.

The client library is synchronous; that is fine for this one-shot query. It does not
retry: a person runs ``scaler simulate`` and sees the error at once, instead of
after the library's default 1 + 2 + 4 s of backoff.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from scaler.errors import QUOTE_LIMIT, quote
from scaler.simulate.bounds import MAX_DURATION, check_load, show_number
from scaler.simulate.sampling import trace_from_rates
from scaler.simulate.types import SimulationError, Trace, TraceError

QUERY_TIMEOUT = 60
"""Seconds to wait for Prometheus' answer: a 7-day range at 15 s steps can take a few."""

_RELATIVE = re.compile(r"(?:now)?\s*([+-])\s*(\d+(?:\.\d*)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_UNIX = re.compile(r"\d+(?:\.\d*)?")


def parse_time(text: str, *, now: datetime) -> datetime:
    """A point in time from the command line, as an aware datetime.

    Accepts ``now``; ``now-6h`` or ``-30m`` (units s, m, h, d; ``+`` also works);
    unix seconds (``1714554000``); RFC 3339 / ISO 8601 (``2024-05-01T09:00:00Z``; a time
    without an offset is taken as UTC, as Prometheus does).
    """
    value = text.strip()
    if value == "now":
        return now
    if match := _RELATIVE.fullmatch(value):
        sign, amount, unit = match.groups()
        seconds = float(amount) * _UNIT_SECONDS[unit]
        try:
            return now + timedelta(seconds=seconds if sign == "+" else -seconds)
        except OverflowError as e:  # beyond datetime's years 1..9999
            raise SimulationError(f"{quote(text)} is too far from now") from e
    try:
        if _UNIX.fullmatch(value):
            return datetime.fromtimestamp(float(value), tz=UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError) as e:
        raise SimulationError(_bad_time(text)) from e
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _bad_time(text: str) -> str:
    return (
        f"{quote(text)} is not a time: use RFC 3339 (2024-05-01T09:00:00Z), unix seconds, "
        "'now', or a time relative to now such as now-6h or -30m (units s, m, h, d)"
    )


def load_trace_prometheus(
    url: str,
    query: str,
    *,
    start: datetime,
    end: datetime,
    step: float,
    seed: int,
    token_spread: float = 1.0,
) -> Trace:
    """The requests implied by ``query`` (requests/s) over ``[start, end]``, ``step`` s apart.

    Raises ``SimulationError`` for a bad range or step, ``TraceError`` when Prometheus
    cannot be reached, rejects the query, or returns no series or several.
    """
    if not (step > 0 and math.isfinite(step)):
        raise SimulationError(f"step {step!r} must be a positive number of seconds")
    if end <= start:
        raise SimulationError(f"start {start.isoformat()} is not before end {end.isoformat()}")
    where = f"query {quote(query)} from {start.isoformat()} to {end.isoformat()} (step {step:g} s)"
    # The library rounds start and end to whole seconds; so does the step grid.
    first = round(start.timestamp())
    steps = int((round(end.timestamp()) - first) // step) + 1
    # Bounded before asking: the range alone can make the trace too long.
    check_load((end - start).total_seconds(), 0, where=where)
    if steps > MAX_DURATION:
        raise SimulationError(f"{where}: {steps:,} steps, more than one per second of the range")
    series = _one_series(_query(url, query, start=start, end=end, step=step, where=where), where)
    rates = _rates(series, first=first, step=step, steps=steps, where=where)
    top = rates.index(max(rates))
    largest = f"rate {show_number(rates[top])} at {show_number(top * step)} s"
    check_load(steps * step, sum(rates) * step, where=where, largest=largest)
    name = f"prometheus: {query}"
    return trace_from_rates(name, rates, step=step, seed=seed, token_spread=token_spread)


def _query(url: str, query: str, *, start: datetime, end: datetime, step: float, where: str) -> Any:
    """The answer's ``data.result``, whatever its shape; ``TraceError`` if there is none."""
    try:
        with PrometheusConnect(
            url, disable_ssl=True, retry=Retry(total=0), timeout=QUERY_TIMEOUT
        ) as prometheus:
            return prometheus.custom_query_range(query, start, end, str(step))
    except PrometheusApiClientException as e:  # its text holds the whole answer: cut it
        raise TraceError(f"Prometheus at {url} rejected {where}: {quote(str(e))}") from e
    except (KeyError, TypeError, IndexError) as e:
        # The library indexes the answer as {"data": {"result": ...}}: a JSON list,
        # string or number, or a dict without those keys, fails there.
        raise TraceError(
            f"Prometheus at {url} answered {where} with JSON that is not a query result "
            f"({type(e).__name__}: {quote(str(e))})"
        ) from e
    except (OSError, ValueError) as e:
        # requests' errors are OSErrors; ValueError: an answer that is not JSON.
        raise TraceError(f"cannot get {where} from Prometheus at {url}: {quote(str(e))}") from e


def _one_series(result: Any, where: str) -> Sequence[Sequence[Any]]:
    """The ``values`` of the only series, or ``TraceError``."""
    if not isinstance(result, list) or not all(isinstance(s, Mapping) for s in result):
        raise TraceError(f"Prometheus returned {type(result).__name__} for {where}, not a matrix")
    if not result:
        raise TraceError(
            f"Prometheus returned no data for {where}: check the metric name and labels, "
            "and that the range holds samples"
        )
    if len(result) > 1:
        labels = ", ".join(_labels(s.get("metric", {})) for s in result[:3])
        more = ", ..." if len(result) > 3 else ""
        raise TraceError(
            f"{where} returned {len(result)} series ({labels}{more}); it must return one: "
            "wrap it in sum(...)"
        )
    values = result[0].get("values", [])
    if not isinstance(values, list):
        raise TraceError(f"Prometheus returned a series without values for {where}")
    return values


def _labels(metric: object) -> str:
    if not isinstance(metric, Mapping):
        return quote(metric)
    text = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items(), key=str)) + "}"
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "…"


def _rates(
    values: Sequence[Sequence[Any]], *, first: int, step: float, steps: int, where: str
) -> list[float]:
    """requests/s per step; steps without a sample, or with NaN, are 0."""
    rates = [0.0] * steps
    for sample in values:
        try:
            timestamp, text = float(sample[0]), str(sample[1])
            rate = float(text)
        except (TypeError, ValueError, IndexError, KeyError) as e:
            raise TraceError(
                f"Prometheus returned a malformed sample {quote(sample)} for {where}"
            ) from e
        if not math.isfinite(timestamp):
            raise TraceError(f"Prometheus returned a malformed sample {quote(sample)} for {where}")
        index = round((timestamp - first) / step)
        if not 0 <= index < steps:
            raise TraceError(
                f"{where}: sample at {show_number(timestamp)} lies outside the range asked"
            )
        if math.isnan(rate):
            continue
        if rate < 0 or math.isinf(rate):
            when = datetime.fromtimestamp(timestamp, tz=UTC).isoformat()
            raise TraceError(
                f"{where}: value {quote(text)} at {when} is not a request rate (requests/s >= 0)"
            )
        rates[index] = rate
    return rates
