"""A lost upstream (a node gone: no FIN, no RST) fails its requests within the keepalive
bound, in the router and the proxy, as a pod that hangs up does; and without the socket
options the same loss leaves the client hanging (the control).

The loss is real: iptables drops the pod's port on loopback while its process lives
(``tests.support.lost_peer``). The waits are TCP's own timers, so these tests take a
few seconds each: ``--upstream-keepalive 1`` gives a bound of 1 + 1 x 3 = 4 s.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from scaler.errors import ConfigError
from scaler.proxy.forward import FRESH_SESSION, SESSION, upstream_sessions
from scaler.proxy.settings import ProxySettings, load_proxy_settings
from scaler.router.app import ROUTER, build_app
from scaler.router.endpoints import Endpoint, EndpointState
from scaler.router.handlers import Router
from scaler.router.settings import RouterSettings, load_router_settings
from scaler.serving.keepalive import UpstreamKeepalive
from tests.support.lost_peer import SilentPod, dropped, silent_pod
from tests.support.proxy_in_loop import proxy_in_loop
from tests.support.router_rig import ManualDiscovery
from tests.support.waits import until

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
KEEPALIVE = 1
BOUND = UpstreamKeepalive(KEEPALIVE).bound
SLACK = 3.0
"""Seconds past the bound still counted as on time (a loaded 2-core machine)."""
CONNECT_TIMEOUT = 0.5


@asynccontextmanager
async def routed(pod: SilentPod, keepalive: int) -> AsyncIterator[tuple[str, Router, Registry]]:
    """A router in this loop whose one pod is ``pod``."""
    registry = CollectorRegistry()
    settings = RouterSettings(
        endpoints=["http://unused:1"],
        upstream_keepalive=keepalive,
        connect_timeout=CONNECT_TIMEOUT,
    )
    snapshot = {"pod-0": Endpoint("pod-0", pod.url, EndpointState.READY)}
    app = build_app(settings, ManualDiscovery(snapshot), registry)
    server = TestServer(app, host="127.0.0.1", handler_cancellation=True)
    await server.start_server()
    try:
        yield str(server.make_url("")), app[ROUTER], Registry(registry)
    finally:
        await server.close()


class Registry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def __call__(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


async def _rest_after_loss(answer: aiohttp.ClientResponse, port: int) -> tuple[bytes, float]:
    """What the client reads once ``port``'s peer is lost, and the seconds it took."""
    with dropped(port):
        lost = time.monotonic()
        async with asyncio.timeout(BOUND + SLACK):
            rest = await answer.content.read()
        return rest, time.monotonic() - lost


async def test_a_pod_lost_mid_answer_ends_the_stream_with_the_error_line_within_the_bound() -> None:
    async with (
        silent_pod(lines=1) as pod,
        routed(pod, KEEPALIVE) as (url, router, sample),
        aiohttp.ClientSession() as client,
        client.post(url + "/api/chat", json=CHAT) as answer,
    ):
        assert b"token 0" in await answer.content.readline()
        assert router.dispatcher.in_flight == 1
        rest, took = await _rest_after_loss(answer, pod.port)
    assert b"Ollama closed the stream" in rest
    assert BOUND - 1.5 < took < BOUND + SLACK  # the keepalive's doing, not an earlier end
    assert sample("scaler_router_upstream_errors_total", kind="mid_stream") == 1
    assert sample("scaler_router_requests_in_flight") == 0
    assert sample("scaler_router_queue_depth") == 0
    assert sample("scaler_router_pod_requests_in_flight", pod="pod-0") == 0


async def test_without_keepalive_the_same_loss_leaves_the_stream_hanging_past_the_bound() -> None:
    """The control: what the test above would see without the socket options."""
    async with (
        silent_pod(lines=1) as pod,
        routed(pod, keepalive=0) as (url, router, _),
        aiohttp.ClientSession() as client,
        client.post(url + "/api/chat", json=CHAT) as answer,
    ):
        assert b"token 0" in await answer.content.readline()
        with pytest.raises(TimeoutError):
            await _rest_after_loss(answer, pod.port)
        assert router.dispatcher.in_flight == 1  # still held by a pod that is gone


async def test_a_request_silent_before_its_first_token_on_a_lost_pod_fails_within_the_bound() -> (
    None
):
    """The request was ACKed, so TCP has nothing to retransmit: only keepalive can
    tell. Then, as for any pod that cannot be reached before a byte was sent, the
    router tries it again (a resend, then two more connects that time out) and
    answers 502."""
    async with (
        silent_pod(lines=0) as pod,
        routed(pod, KEEPALIVE) as (url, router, sample),
        aiohttp.ClientSession() as client,
    ):
        sent = asyncio.ensure_future(client.post(url + "/api/chat", json=CHAT))
        try:
            await until(lambda: pod.arrived == 1, what="the pod has the request")
            with dropped(pod.port):
                lost = time.monotonic()
                async with asyncio.timeout(BOUND + 4 * CONNECT_TIMEOUT + SLACK):
                    answer = await sent
                    body = await answer.read()
                took = time.monotonic() - lost
        finally:
            sent.cancel()
    assert answer.status == 502 and b"cannot reach Ollama" in body
    assert took > BOUND - 1.5  # the keepalive ended it: no earlier end
    assert sample("scaler_router_upstream_errors_total", kind="connect") == 3
    assert sample("scaler_router_requests_in_flight") == 0
    assert sample("scaler_router_queue_depth") == 0
    assert router.dispatcher.in_flight == 0


async def test_a_models_writer_lost_mid_pull_ends_the_proxys_stream_within_the_bound() -> None:
    """The proxy's fresh connections (model management) carry the options too."""
    registry = CollectorRegistry()
    settings = ProxySettings(
        upstream="http://127.0.0.1:9",  # never reached: only management is sent
        management_upstream=None,
        upstream_keepalive=KEEPALIVE,
    )
    async with silent_pod(lines=1) as writer:
        settings = settings.model_copy(update={"management_upstream": writer.url})
        async with (
            proxy_in_loop(settings, registry) as proxy,
            aiohttp.ClientSession() as client,
            client.post(proxy.url + "/api/pull", json={"model": "llama3.2"}) as answer,
        ):
            assert b"token 0" in await answer.content.readline()
            rest, took = await _rest_after_loss(answer, writer.port)
    assert b"Ollama closed the stream" in rest
    assert BOUND - 1.5 < took < BOUND + SLACK
    errors = registry.get_sample_value("ollama_proxy_upstream_errors_total", {"kind": "mid_stream"})
    assert errors == 1


def _options(sock: socket.socket) -> tuple[int, ...]:
    tcp = socket.IPPROTO_TCP
    return (
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        sock.getsockopt(tcp, socket.TCP_KEEPIDLE),
        sock.getsockopt(tcp, socket.TCP_KEEPINTVL),
        sock.getsockopt(tcp, socket.TCP_KEEPCNT),
        sock.getsockopt(tcp, socket.TCP_USER_TIMEOUT),
    )


@pytest.mark.parametrize(
    ("idle", "expected"),
    [
        pytest.param(15, (1, 15, 5, 3, 30_000), id="default-30s"),
        pytest.param(1, (1, 1, 1, 3, 4_000), id="interval-at-least-1s"),
        pytest.param(7, (1, 7, 2, 3, 13_000), id="interval-a-third-rounded-down"),
    ],
)
def test_the_factory_sets_keepalive_and_the_user_timeout_on_each_socket(
    idle: int, expected: tuple[int, ...]
) -> None:
    info = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 0))
    with UpstreamKeepalive(idle).socket_factory(info) as sock:
        assert _options(sock) == expected
    assert UpstreamKeepalive(idle).bound * 1000 == expected[-1]


def test_off_leaves_the_kernels_defaults() -> None:
    info = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 0))
    with UpstreamKeepalive(0).socket_factory(info) as sock, socket.socket() as plain:
        assert _options(sock) == _options(plain)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0


async def test_both_upstream_sessions_connect_with_the_options() -> None:
    """The pooled and the fresh session, as the proxy and the router build them."""
    async with silent_pod(lines=1) as pod:
        app = web.Application()
        async with upstream_sessions(app, UpstreamKeepalive(6)):
            for key in (SESSION, FRESH_SESSION):
                async with app[key].post(pod.url + "/api/chat", json=CHAT) as answer:
                    assert b"token 0" in await answer.content.readline()  # still streaming
                    assert answer.connection is not None and answer.connection.transport
                    sock = answer.connection.transport.get_extra_info("socket")
                    assert _options(sock) == (1, 6, 2, 3, 12_000), key


@pytest.mark.parametrize("value", ["-1", "3601", "1.5", "soon"])
def test_a_bad_upstream_keepalive_is_an_error_naming_the_key_and_the_value(value: str) -> None:
    for load, extra in (
        (load_proxy_settings, {}),
        (load_router_settings, {"endpoints": ["http://127.0.0.1:1"]}),
    ):
        with pytest.raises(ConfigError) as raised:
            load(upstream_keepalive=value, **extra)
        assert "upstream_keepalive" in str(raised.value) and value in str(raised.value)


def test_the_default_notices_a_lost_peer_in_30_seconds() -> None:
    settings = RouterSettings(endpoints=["http://127.0.0.1:1"])
    assert settings.keepalive() == UpstreamKeepalive(15)
    assert settings.keepalive().bound == 30 == ProxySettings().keepalive().bound
