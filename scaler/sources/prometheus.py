"""Instant queries against Prometheus's HTTP API, as a ``MetricSource``.

One ``GET /api/v1/query`` per call on a shared ``aiohttp.ClientSession``: the controller
asks for every metric of every target each tick, concurrently, so a call holds no lock,
keeps no state and never blocks the event loop. Every failure is one of the
``MetricUnavailable`` types with the query in its message and the cause chained; nothing
is logged here, because the controller logs each failure once at its loop boundary.

Timestamps: Prometheus stamps every sample of an instant query with the evaluation time
(the ``time`` we send), and carries a series' last raw sample forward for its lookback
(5 min by default) or until a scrape marks it stale. So the staleness check below
catches clock trouble and caches or proxies that answer for another time, not old raw
data; bound data age in the query itself, e.g. ``last_over_time(metric[10s])``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

import aiohttp
from yarl import URL

from scaler.errors import ConfigError
from scaler.sources.base import (
    BadResponse,
    ConnectionFailed,
    EmptyResult,
    HttpStatus,
    MissingLabel,
    MultipleSeries,
    NotFinite,
    PodSamples,
    QueryTimeout,
    Sample,
    StaleSample,
    plausible,
)

Answer = tuple[str, Any]
"""``(resultType, result)`` of a successful instant query, as Prometheus sent them."""

QUERY_SHOWN: Final = 120
"""Characters of a query quoted in an error message; longer ones are cut with '…'."""


class PrometheusSource:
    """Evaluates PromQL at a given time on one Prometheus server.

    ``base_url``: the server root, e.g. ``http://prometheus.monitoring:9090`` (a path
    prefix such as ``/prometheus`` is kept). ``timeout``: seconds for the whole request,
    connection included; it is also sent to Prometheus so it stops evaluating a query
    nobody waits for. ``staleness``: seconds a result's timestamp may lie before or
    after ``now``.
    """

    __slots__ = ("_client_timeout", "_session", "_staleness", "_timeout", "_url")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout: float,
        staleness: float,
    ) -> None:
        url = URL(base_url)
        problems = []
        if url.scheme not in ("http", "https") or not url.host:
            problems.append(f"base_url = {base_url!r}, must be an http(s) URL with a host")
        if not timeout > 0:
            problems.append(f"timeout = {timeout!r}, must be greater than 0 seconds")
        if not staleness > 0:
            problems.append(f"staleness = {staleness!r}, must be greater than 0 seconds")
        if problems:
            raise ConfigError(problems, source="PrometheusSource")
        self._session = session
        self._url = url.with_path(url.path.rstrip("/") + "/api/v1/query")
        self._timeout = timeout
        self._client_timeout = aiohttp.ClientTimeout(total=timeout)
        self._staleness = staleness

    async def value(self, query: str, *, now: float) -> Sample:
        """The one series (or scalar) ``query`` returns at ``now`` (unix seconds)."""
        return self.value_of(query, await self.answer(query, now=now), now=now)

    async def per_pod(self, query: str, *, now: float) -> PodSamples:
        """One sample per pod, keyed by each series' ``pod`` label, at ``now``."""
        return self.per_pod_of(query, await self.answer(query, now=now), now=now)

    def value_of(self, query: str, answer: Answer, *, now: float) -> Sample:
        """``value`` from an answer already fetched (e.g. a target's share of a group
        query's answer); errors name ``query``."""
        result_type, result = answer
        try:
            if result_type == "scalar":
                point = result
            else:
                series = vector_series(query, result_type, result)
                if len(series) != 1:
                    raise _count_error(query, series)
                point = series[0]["value"]
            sample = self._sample(query, point, now)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise BadResponse(f"{_q(query)}: unexpected result shape: {error!r}") from error
        if not math.isfinite(sample.value):
            raise NotFinite(f"{_q(query)} returned {_number(sample.value)}")
        plausible(sample.value, f"{_q(query)} returned")
        return sample

    def per_pod_of(self, query: str, answer: Answer, *, now: float) -> PodSamples:
        """``per_pod`` from an answer already fetched; errors name ``query``."""
        result_type, result = answer
        if result_type == "scalar":
            raise MissingLabel(f"{_q(query)} returned a scalar, which has no pod label")
        samples: dict[str, Sample] = {}
        try:
            series = vector_series(query, result_type, result)
            if not series:
                raise EmptyResult(f"{_q(query)} returned no series")
            for one in series:
                labels = one["metric"]
                pod = labels.get("pod")
                if not isinstance(pod, str):
                    raise MissingLabel(
                        f"{_q(query)} returned a series without a pod label: {_labels(labels)};"
                        " keep it, e.g. sum by (pod) (...)"
                    )
                if pod in samples:
                    raise MissingLabel(
                        f"{_q(query)} returned pod {pod!r} twice; aggregate the other "
                        "labels away, e.g. sum by (pod) (...)"
                    )
                samples[pod] = self._sample(query, one["value"], now, pod=pod)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as error:
            raise BadResponse(f"{_q(query)}: unexpected result shape: {error!r}") from error
        for pod, sample in samples.items():
            if not math.isfinite(sample.value):
                raise NotFinite(f"{_q(query)} returned {_number(sample.value)} for pod {pod!r}")
            plausible(sample.value, f"{_q(query)} for pod {pod!r} returned")
        return PodSamples(samples)

    async def answer(self, query: str, *, now: float) -> Answer:
        """``(resultType, result)`` of a successful answer; every failure typed."""
        # ``timeout`` as float seconds: Prometheus 2.x rejects fractional durations ("0.5s").
        params = {"query": query, "time": f"{now:.3f}", "timeout": f"{self._timeout:g}"}
        try:
            async with self._session.get(
                self._url, params=params, timeout=self._client_timeout
            ) as r:
                body = await r.read()
                if not 200 <= r.status < 300:
                    cause = aiohttp.ClientResponseError(
                        r.request_info, r.history, status=r.status, message=r.reason or ""
                    )
                    detail = _error_detail(body)
                    raise HttpStatus(
                        f"{_q(query)}: Prometheus answered {r.status} {r.reason or ''}".rstrip()
                        + (f" ({detail})" if detail else "")
                    ) from cause
        except TimeoutError as error:  # before ClientError: ServerTimeoutError is both
            raise QueryTimeout(f"{_q(query)}: no answer within {self._timeout:g} s") from error
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as error:
            raise ConnectionFailed(f"{_q(query)}: {self._url.origin()}: {error}") from error
        except aiohttp.ClientError as error:
            raise BadResponse(f"{_q(query)}: not a valid HTTP answer: {error}") from error
        return _decode(query, r.status, body)

    def _sample(self, query: str, point: Any, now: float, *, pod: str | None = None) -> Sample:
        """``[unix_seconds, "value"]`` as a ``Sample``, within ``staleness`` of ``now``."""
        stamp, text = point
        if not isinstance(text, str) or isinstance(stamp, bool):
            raise TypeError(f"not a [time, 'value'] pair: {point!r}")
        sample = Sample(float(text), float(stamp))
        age = now - sample.timestamp
        if abs(age) > self._staleness:
            where = f" for pod {pod!r}" if pod is not None else ""
            when = "before" if age > 0 else "after (check the clocks)"
            raise StaleSample(
                f"{_q(query)} returned a sample{where} stamped {abs(age):.1f} s {when} "
                f"the evaluation time; the bound is {self._staleness:g} s"
            )
        return sample


def _decode(query: str, status_code: int, body: bytes) -> Answer:
    """``(resultType, result)`` from a 2xx body of Prometheus's documented envelope."""
    try:
        document = json.loads(body)
        status = document["status"]
        if status != "success":
            detail = _error_detail(body)
            raise BadResponse(
                f"{_q(query)}: status {status!r} in a {status_code} answer"
                + (f" ({detail})" if detail else "")
            )
        data = document["data"]
        return str(data["resultType"]), data["result"]
    except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise BadResponse(f"{_q(query)}: not a Prometheus API answer: {body[:80]!r}") from error


def vector_series(query: str, result_type: str, result: Any) -> list[dict[str, Any]]:
    """The series of an instant vector answer; ``BadResponse`` for another type,
    ``TypeError`` for a vector that is not a list."""
    if result_type != "vector":
        raise BadResponse(
            f"{_q(query)} returned a {result_type}, not an instant vector"
            + ("; drop the [range] or wrap it, e.g. rate(...)" if result_type == "matrix" else "")
        )
    if not isinstance(result, list):
        raise TypeError(f"vector result is a {type(result).__name__}")
    return result


def _count_error(query: str, series: list[dict[str, Any]]) -> EmptyResult | MultipleSeries:
    if not series:
        return EmptyResult(f"{_q(query)} returned no series")
    shown = ", ".join(_labels(one["metric"]) for one in series[:3])
    more = ", …" if len(series) > 3 else ""
    return MultipleSeries(
        f"{_q(query)} returned {len(series)} series ({shown}{more}) where one was "
        "expected; aggregate them, e.g. sum(...)"
    )


def _error_detail(body: bytes) -> str:
    """``errorType: error`` from a Prometheus error body, or '' if it has none."""
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(document, dict):
        return ""
    parts = [str(document[k]) for k in ("errorType", "error") if document.get(k)]
    return ": ".join(parts)


def _labels(metric: Any) -> str:
    if not isinstance(metric, dict):
        raise TypeError(f"series labels are a {type(metric).__name__}")
    return "{" + ", ".join(f"{k}={v!r}" for k, v in sorted(metric.items())) + "}"


def _number(value: float) -> str:
    """NaN, +Inf or -Inf, spelled as PromQL does."""
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def _q(query: str) -> str:
    """The query as quoted in messages: ``query 'sum(x)'``, cut to ``QUERY_SHOWN``."""
    shown = query if len(query) <= QUERY_SHOWN else query[: QUERY_SHOWN - 1] + "…"
    return f"query {shown!r}"
