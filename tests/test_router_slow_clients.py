"""The router under slow and careless clients (issue 13, points 3 and 9): a body that
trickles in gets 408 and takes no place in the queue; a client that leaves is counted
with code 499; extra slashes hide neither inference nor model management."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx

from tests.support.fake_ollama import running_fake_ollama
from tests.support.router_rig import MODEL, router_rig

CHAT = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode()


def _head(path: str, length: int) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_trickling_body_gets_408_holds_no_place_and_others_are_served() -> None:
    with router_rig(pods=1, router={"body_timeout": 0.3, "max_queue": 1}) as rig:
        with socket.create_connection(("127.0.0.1", rig.server.port), timeout=5) as slow:
            slow.sendall(_head("/api/chat", len(CHAT)) + CHAT[:5])
            answer = httpx.post(rig.url + "/api/chat", content=CHAT, timeout=10)
            assert answer.status_code == 200  # the trickling one holds nothing meanwhile
            started = time.monotonic()
            reply = _read_all(slow)  # the router closes after its 408
        assert reply.startswith(b"HTTP/1.1 408")
        assert b"not received within 0.3 s" in reply
        assert time.monotonic() - started < 2.0
        assert rig.sample("scaler_router_rejected_total", reason="bad_request") == 1
        assert len(rig.fakes[0].requests) == 1


def test_a_client_that_leaves_the_queue_is_counted_499() -> None:
    fake = {"tokens": 200, "tokens_per_second": 50.0}  # ~4 s answers
    with router_rig(pods=1, fake=fake) as rig:
        streaming = threading.Thread(
            target=httpx.post, args=(rig.url + "/api/chat",), kwargs={"content": CHAT}
        )
        streaming.start()
        rig.wait_until(lambda: rig.fakes[0].stats().active == 1)
        with socket.create_connection(("127.0.0.1", rig.server.port), timeout=5) as leaver:
            leaver.sendall(_head("/api/chat", len(CHAT)) + CHAT)
            rig.wait_until(lambda: rig.router.dispatcher.queued == 1)
        rig.wait_until(
            lambda: rig.sample("scaler_router_requests_total", path="/api/chat", code="499") == 1
        )
        assert rig.router.dispatcher.queued == 0
        streaming.join(15)


def test_extra_slashes_are_queued_as_inference_and_sent_to_the_writer_as_management() -> None:
    with running_fake_ollama() as writer:
        with router_rig(pods=1, router={"management_upstream": writer.url}) as rig:
            for path in ("/api/pull/", "/api//pull"):
                assert httpx.post(rig.url + path, json={"model": MODEL}).status_code == 200
            assert httpx.post(rig.url + "/api//chat/", content=CHAT).status_code == 200
            sample = rig.sample("scaler_router_queue_wait_seconds_count", path="/api/chat")
            assert sample == 1  # through the shared queue
            assert rig.sample("scaler_router_requests_total", path="/api/pull", code="200") == 2
        assert [r.path for r in writer.requests] == ["/api/pull", "/api/pull"]
        assert [r.path for r in rig.fakes[0].requests] == ["/api/chat"]


def test_bodies_held_at_once_are_bounded_by_body_memory_and_a_refusal_is_503() -> None:
    with router_rig(pods=1, router={"max_body": 3000, "body_memory": 4096}) as rig:
        with socket.create_connection(("127.0.0.1", rig.server.port), timeout=5) as slow:
            slow.sendall(_head("/api/chat", 3000) + b"{")  # holds 3000 of 4096 bytes
            rig.wait_until(lambda: rig.router.bodies.held == 3000)
            refused = httpx.post(rig.url + "/api/chat", content=b" " * 1990 + CHAT[:10])
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "5"
            assert "would exceed 4096 bytes" in refused.json()["error"]
        rig.wait_until(lambda: rig.router.bodies.held == 0)  # the slow client left
        assert httpx.post(rig.url + "/api/chat", content=CHAT).status_code == 200
        assert rig.sample("scaler_router_rejected_total", reason="queue_full") == 1
