"""The routers' queue stream from the controller's side: the client (``follow``), and the
feed that follows every router of a metric, with stand-in routers on loopback."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from scaler.config.direct import DirectConfig
from scaler.controller.metrics import build_metrics
from scaler.controller.push import MAX_BACKOFF, PushFeed
from scaler.errors import ConfigError
from scaler.sources.base import BadResponse, ConnectionFailed, EmptyResult, HttpStatus
from scaler.sources.router_push import MAX_LINE, PushStale, QueueLine, follow, parse_line, watch_url
from tests.support.fakes import FakeClock
from tests.support.queue_stream_stand_in import queue_stream_stand_ins
from tests.support.router_stand_ins import FakeResolver
from tests.support.waits import until
from tests.test_controller import _config

HOST = "routers.test"
SERIES = ["scaler_router_queue_depth", "scaler_router_requests_in_flight"]


class Following:
    """``follow`` in a task, its lines and how it ended."""

    def __init__(self, session: aiohttp.ClientSession, url: str, stale_after: float = 3.0):
        self.lines: list[QueueLine] = []
        self.task = asyncio.create_task(
            follow(session, url, self.lines.append, stale_after=stale_after), name="follow"
        )

    async def ended(self) -> BaseException:
        await until(self.task.done, what="the stream ended")
        error = self.task.exception()
        assert error is not None
        return error


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        pytest.param(b"queued", "not JSON", id="not-json"),
        pytest.param(b"[1, 2, 3]", "not a JSON object", id="a-list"),
        pytest.param(b'{"queued": 1, "in_flight": 0}', "seq is 'None'", id="no-seq"),
        pytest.param(b'{"queued": -1, "in_flight": 0, "seq": 1}', "queued is '-1'", id="negative"),
        pytest.param(b'{"queued": 1.5, "in_flight": 0, "seq": 1}', "queued is '1.5'", id="float"),
        pytest.param(b'{"queued": true, "in_flight": 0, "seq": 1}', "queued is 'True'", id="bool"),
        pytest.param(b'{"queued": "3", "in_flight": 0, "seq": 1}', "queued is '3'", id="text"),
    ],
)
def test_a_line_the_router_does_not_write_is_a_bad_response(raw: bytes, says: str) -> None:
    with pytest.raises(BadResponse, match=says):
        parse_line(raw, source="r")


def test_a_line_is_three_counts() -> None:
    assert parse_line(b'{"queued": 3, "in_flight": 2, "seq": 7}', source="r") == (3, 2, 7)
    assert watch_url("fd00::1", 80) == "http://[fd00::1]:80/scaler/v1/queue/watch"


async def test_the_stream_gives_the_state_at_once_then_each_change_until_it_ends(
    http_session: aiohttp.ClientSession,
) -> None:
    async with queue_stream_stand_ins(1) as ([router], [address], port):
        router.set(2, 1)
        following = Following(http_session, watch_url(address, port))
        await until(lambda: following.lines, what="the first line")
        router.set(5, 1)
        router.set(0, 0)
        await until(lambda: len(following.lines) == 3, what="two changes")
        assert [(line.queued, line.in_flight) for line in following.lines] == [
            (2, 1),
            (5, 1),
            (0, 0),
        ]
        assert [line.seq for line in following.lines] == [2, 3, 4]
        router.drop()
        error = await following.ended()
    assert isinstance(error, ConnectionFailed) and "the stream ended" in str(error)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        pytest.param(b'{"queued": "lots"}\n', "queued is 'lots'", id="bad-line"),
        pytest.param(b'{"queued": 1' + b" " * MAX_LINE + b"}\n", "a line of", id="long-line"),
        pytest.param(b" " * (MAX_LINE + 1), f"within {MAX_LINE} bytes", id="no-end"),
    ],
)
async def test_a_bad_line_ends_the_stream_as_a_bad_response(
    http_session: aiohttp.ClientSession, raw: bytes, says: str
) -> None:
    async with queue_stream_stand_ins(1) as ([router], [address], port):
        following = Following(http_session, watch_url(address, port))
        await until(lambda: following.lines, what="the first line")
        router.send_raw(raw)
        error = await following.ended()
    assert isinstance(error, BadResponse) and says in str(error)


async def test_a_silent_stream_is_stale_and_a_refusal_is_its_status(
    http_session: aiohttp.ClientSession,
) -> None:
    async with queue_stream_stand_ins(1, heartbeat=0.02) as ([router], [address], port):
        router.silent = True  # hung after connecting: the heartbeats stop too
        following = Following(http_session, watch_url(address, port), stale_after=0.2)
        error = await following.ended()
        assert isinstance(error, PushStale) and "no line for 0.2 s" in str(error)
        assert following.lines == [(0, 0, 1)]  # the first line, then silence
        router.refuse = 1
        refused = Following(http_session, watch_url(address, port))
        error = await refused.ended()
    assert isinstance(error, HttpStatus) and "503" in str(error)


async def test_heartbeats_keep_a_quiet_stream_live(http_session: aiohttp.ClientSession) -> None:
    async with queue_stream_stand_ins(1, heartbeat=0.02) as ([router], [address], port):
        following = Following(http_session, watch_url(address, port), stale_after=0.2)
        await until(lambda: len(following.lines) >= 20, what="a dozen heartbeats")
        assert not following.task.done()  # 0.4 s of a quiet queue, never stale
        assert {(line.queued, line.in_flight) for line in following.lines} == {(0, 0)}
        router.drop()
        await following.ended()


class FeedRig:
    """A feed over stand-in routers behind one name, on a fake clock; its backoff
    sleeps are recorded and yield only once, so a retry comes at once."""

    def __init__(self, session: aiohttp.ClientSession, addresses: list[str], port: int) -> None:
        self.clock = FakeClock()
        self.resolver = FakeResolver({HOST: list(addresses)})
        self.registry = CollectorRegistry()
        metrics = build_metrics(self.registry, _config())
        self.slept: list[float] = []
        self.changes = 0
        self.feed = PushFeed(
            DirectConfig(host=HOST, port=port, series=SERIES),
            session=session,
            resolver=self.resolver,
            labels=("chatbot", "ollama", "queue"),
            metrics=metrics,
            refresh_every=2.0,
            clock=self.clock,
            sleep=self._sleep,
        )
        self.feed.on_change = self._changed

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)

    def _changed(self) -> None:
        self.changes += 1

    def live(self) -> float | None:
        labels = {"namespace": "chatbot", "deployment": "ollama", "metric": "queue"}
        return self.registry.get_sample_value("scaler_push_streams", labels)

    def errors(self, kind: str) -> float | None:
        labels = {"namespace": "chatbot", "deployment": "ollama", "metric": "queue", "kind": kind}
        return self.registry.get_sample_value("scaler_push_errors_total", labels)

    async def total(self, value: float) -> None:
        await until(lambda: self._is(value), what=f"the pushed total {value}")

    def _is(self, value: float) -> bool:
        try:
            return self.feed.total(self.clock.now).value == value
        except PushStale:
            return False


async def test_the_feed_sums_every_router_and_wakes_only_on_a_change_of_the_sum(
    http_session: aiohttp.ClientSession,
) -> None:
    async with queue_stream_stand_ins(2) as (routers, addresses, port):
        routers[0].set(3, 1)
        rig = FeedRig(http_session, addresses, port)
        with pytest.raises(PushStale, match="no router to follow"):
            rig.feed.total(rig.clock.now)  # before the first lookup
        await rig.feed.refresh()
        await rig.total(4)
        assert rig.live() == 2
        woken = rig.changes
        routers[1].set(0, 2)
        await rig.total(6)
        assert rig.changes == woken + 1
        routers[0].set(2, 2)  # another line, the same sum: no decision to wake
        stream = rig.feed.streams[addresses[0]]
        await until(lambda: stream.line is not None and stream.line.seq == 3, what="the line")
        assert rig.changes == woken + 1
        # Three seconds without a line from one router (a fake clock): the sum is stale.
        rig.clock.now += 3.1
        with pytest.raises(PushStale, match="no live stream"):
            rig.feed.total(rig.clock.now)
        await rig.feed.close()
        assert rig.live() == 0


async def test_the_feed_follows_the_routers_the_name_has_now(
    http_session: aiohttp.ClientSession,
) -> None:
    async with queue_stream_stand_ins(2) as (_, addresses, port):
        rig = FeedRig(http_session, addresses[:1], port)
        try:
            await rig.feed.refresh()
            await until(lambda: rig.live() == 1, what="one stream")
            rig.resolver.names[HOST] = list(addresses)  # a router more
            await rig.feed.refresh()
            await until(lambda: rig.live() == 2, what="two streams")
            gone = rig.feed.streams[addresses[0]].task
            rig.resolver.names[HOST] = addresses[1:]  # the first one went away
            await rig.feed.refresh()
            await until(gone.done, what="the gone router's stream cancelled")
            assert list(rig.feed.streams) == addresses[1:] and rig.live() == 1
            rig.resolver.names[HOST] = ConnectionFailed("DNS is down")  # keeps what it has
            await rig.feed.refresh()
            assert list(rig.feed.streams) == addresses[1:]
            rig.resolver.names[HOST] = EmptyResult("no router is ready")
            await rig.feed.refresh()
            assert rig.feed.streams == {}
        finally:
            await rig.feed.close()


async def test_a_broken_stream_is_told_once_retried_with_backoff_and_reset_by_a_line(
    http_session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="scaler.controller")
    async with queue_stream_stand_ins(1) as ([router], addresses, port):
        router.refuse = 8
        rig = FeedRig(http_session, addresses, port)
        try:
            await rig.feed.refresh()
            await until(lambda: rig.live() == 1, what="the stream after eight refusals")
            assert rig.slept == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, MAX_BACKOFF, MAX_BACKOFF]
            assert rig.errors("http_status") == 8
            assert len(caplog.records) == 1 and addresses[0] in caplog.records[0].getMessage()
            router.drop()  # a good stream broke: told again, and the backoff starts over
            await until(lambda: rig.live() == 1 and len(rig.slept) == 9, what="back")
            assert rig.slept[8] == 0.1 and router.subscriptions == 2
            assert rig.errors("connection") == 1 and len(caplog.records) == 2
        finally:
            await rig.feed.close()


def test_push_min_interval_is_bounded_and_push_only_stands_for_the_routers_series() -> None:
    for bad in (0.001, 6):
        with pytest.raises(ConfigError, match=f"pushMinInterval.*{bad}"):
            _config(pushMinInterval=bad)
    assert _config().push_min_interval == 0.05
    assert DirectConfig(host=HOST, port=1, series=SERIES).pushed
    assert not DirectConfig(host=HOST, port=1, series=SERIES, push=False).pushed
    assert not DirectConfig(port=1, series=SERIES).pushed  # the pods' proxies do not push
    assert not DirectConfig(host=HOST, port=1, series=["other_series"]).pushed
