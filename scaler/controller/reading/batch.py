"""One Prometheus query per metric shape per tick, shared by the due targets.

``PrometheusBatch`` is the ``MetricSource`` the Prometheus paths read through. The loop
tells it, at each tick, which targets are due (``begin``); the queries of those
targets that share a shape (``scaler.sources.grouping``) form a group. The first
reader of a group to ask starts its one query; every member then takes its own
series from the answer and checks them exactly as its own query's answer would be
checked (``PrometheusSource.value_of`` / ``per_pod_of``). Nobody asks, nothing is
sent: a metric read directly from the routers costs Prometheus nothing.

A query that cannot be grouped is logged once, here at start, and read as written,
as is a query alone in its shape this tick. A group query that fails fails each of
its members with the same kind, as their own queries failing would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from scaler.config import TargetConfig
from scaler.logs import FIELDS
from scaler.sources.base import BadResponse, MetricUnavailable, PodSamples, Sample
from scaler.sources.grouping import Member, Shape, group_query, shape, split
from scaler.sources.prometheus import Answer, PrometheusSource, vector_series
from scaler.sources.promql import Unsupported

log = logging.getLogger("scaler.controller")

Shares = dict[Member, Answer]


@dataclass(slots=True)
class _Group:
    """The members of one shape due at this tick and their one query."""

    query: str
    members: tuple[Member, ...]
    by_deployment: bool
    shape_key: str
    task: asyncio.Task[Shares] | None = field(default=None)


class PrometheusBatch:
    """A ``MetricSource`` that serves the due targets' queries in groups.

    ``targets``: every target the controller runs; each metric's query is shaped once
    here. ``source``: the Prometheus the queries go to."""

    def __init__(self, source: PrometheusSource, targets: Iterable[TargetConfig]) -> None:
        self.source = source
        self.shapes: dict[str, Shape] = {}  # groupable queries by text
        self.queries: dict[str, list[str]] = {}  # each target's queries, by target key
        self.apart: set[str] = set()  # shapes whose answers did not split: asked alone
        self.groups: dict[str, _Group] = {}  # this tick's groups, by member query
        # The last group query written per shape: the due members are the same tick
        # after tick, and writing it is the per-tick cost at 1,000 targets.
        self._texts: dict[str, tuple[tuple[Member, ...], str]] = {}
        self.now: float | None = None
        for target in targets:
            self.queries[target.key] = [metric.query for metric in target.metrics]
            for metric in target.metrics:
                try:
                    self.shapes[metric.query] = shape(metric.query)
                except Unsupported as why:
                    fields = {"target": target.key, "metric": metric.name}
                    log.info(
                        "the metric is read with its own query at each poll, never grouped: %s",
                        why,
                        extra={FIELDS: fields},
                    )

    def begin(self, now: float, keys: Sequence[str]) -> None:
        """A tick at ``now`` (unix seconds) decides the targets ``keys``: group their
        queries. The last tick's groups are forgotten (their reads are over)."""
        for group in self.groups.values():
            if group.task is not None and not group.task.done():
                group.task.cancel()
        self.groups = {}
        self.now = now
        by_shape: dict[str, list[Shape]] = {}
        for key in keys:
            for query in self.queries.get(key, ()):
                one = self.shapes.get(query)
                if one is not None and one.key not in self.apart:
                    by_shape.setdefault(one.key, []).append(one)
        for shape_key, shapes in by_shape.items():
            members = tuple(dict.fromkeys(s.member for s in shapes))
            if len(shapes) < 2:
                continue  # alone this tick: asked as written
            text = self._text(shape_key, shapes[0], members)
            group = _Group(text, members, shapes[0].member[1] is not None, shape_key)
            for one in shapes:
                self.groups[one.query] = group

    def _text(self, shape_key: str, first: Shape, members: tuple[Member, ...]) -> str:
        """The group's query; one member (the same query in several targets): its own
        text, asked once."""
        known = self._texts.get(shape_key)
        if known is not None and known[0] == members:
            return known[1]
        text = first.query if len(members) == 1 else group_query(first, members)
        self._texts[shape_key] = (members, text)
        return text

    async def value(self, query: str, *, now: float) -> Sample:
        answer = await self._share(query, now)
        if answer is None:
            return await self.source.value(query, now=now)
        return self.source.value_of(query, answer, now=now)

    async def per_pod(self, query: str, *, now: float) -> PodSamples:
        answer = await self._share(query, now)
        if answer is None:
            return await self.source.per_pod(query, now=now)
        return self.source.per_pod_of(query, answer, now=now)

    async def _share(self, query: str, now: float) -> Answer | None:
        """This query's part of its group's answer; None to ask it alone."""
        group = self.groups.get(query) if now == self.now else None
        if group is None or group.shape_key in self.apart:
            return None
        if group.task is None:
            group.task = asyncio.ensure_future(self._fetch(group, now))
            group.task.add_done_callback(_retrieve)
        try:
            # Shielded: one member's read cancelled (its Deployment unreadable)
            # must not cancel the answer the others wait for.
            shares = await asyncio.shield(group.task)
        except Unsupported as why:
            if group.shape_key not in self.apart:
                self.apart.add(group.shape_key)
                log.warning("a group query's answer cannot be split; asked alone: %s", why)
            return None
        except MetricUnavailable as error:
            raise type(error)(f"{query[:60]!r} read in a group query: {error}") from error
        return shares[self.shapes[query].member]

    async def _fetch(self, group: _Group, now: float) -> Shares:
        answer = await self.source.answer(group.query, now=now)
        if len(group.members) == 1:
            return {group.members[0]: answer}
        try:
            series = vector_series(group.query, *answer)
        except TypeError as error:
            raise BadResponse(f"{group.query[:60]!r}: not a vector: {error}") from error
        shares = split(series, group.by_deployment)
        return {member: ("vector", shares.get(member, [])) for member in group.members}


def _retrieve(task: asyncio.Task[Shares]) -> None:
    """Mark a group's failure as seen: every member that awaited it may be gone."""
    if not task.cancelled():
        task.exception()
