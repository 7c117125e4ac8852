"""Every inference path Ollama serves waits in ``scaler router``'s shared queue (issue 17,
fix 2), through the router and a pod's proxy to the fake Ollama: queued behind the only
slot, answered, counted under its own ``path`` label, gauges back to 0, the body (a
multipart one too) reaching Ollama byte for byte. An unknown POST naming a ``model``
is queued too (``other``); one naming none passes straight through."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.support.inference_cases import CASES, HELLO, MODEL, SLOW, Case
from tests.support.router_rig import Rig, router_rig

FAKE = {"slots": 1, **SLOW}


def _post(rig: Rig, path: str, body: bytes, content_type: str, into: dict[str, int]) -> None:
    headers = {"Content-Type": content_type}
    answer = httpx.post(rig.url + path, content=body, headers=headers, timeout=30)
    into["status"] = answer.status_code


@pytest.mark.parametrize("case", CASES)
def test_each_inference_family_waits_in_the_shared_queue_and_is_counted(case: Case) -> None:
    with router_rig(pods=1, proxies=True, fake=FAKE) as rig, httpx.Client(timeout=30) as http:
        body = {"model": MODEL, "messages": HELLO}
        with http.stream("POST", rig.url + "/api/chat", json=body) as blocking:
            chunks = blocking.iter_bytes()  # held: a dropped iterator closes the stream
            next(chunks)  # the only slot is held, streaming
            result: dict[str, int] = {}
            args = (rig, case.path, case.body, case.content_type, result)
            sent = threading.Thread(target=_post, args=args)
            sent.start()
            rig.wait_until(lambda: rig.router.dispatcher.queued == 1)
            rig.fakes[0].configure(tokens=5, tokens_per_second=1e6)
        sent.join(20)  # the blocker's client left: its slot went to the queued request
        rig.wait_idle()
        assert result == {"status": case.status}
        assert rig.fakes[0].requests[-1].raw == case.body
        code = str(case.status)
        assert rig.sample("scaler_router_requests_total", path=case.label, code=code) == 1
        assert rig.sample("scaler_router_queue_wait_seconds_count", path=case.label) == 1
        assert rig.sample("scaler_router_queue_depth") == 0
        assert rig.sample("scaler_router_requests_in_flight") == 0


def test_an_unknown_post_naming_no_model_passes_straight_through() -> None:
    with router_rig(pods=1, proxies=True, fake=FAKE) as rig, httpx.Client(timeout=30) as http:
        body = {"model": MODEL, "messages": HELLO}
        with http.stream("POST", rig.url + "/api/chat", json=body) as blocking:
            chunks = blocking.iter_bytes()  # held: a dropped iterator closes the stream
            next(chunks)
            raw = b"\x00\xff not json"
            answer = http.post(rig.url + "/api/me", content=raw)
            assert answer.status_code == 404  # the fake's, at once: nothing waited
            assert rig.router.dispatcher.queued == 0
            assert rig.fakes[0].requests[-1].raw == raw
        rig.wait_idle()
        assert rig.sample("scaler_router_requests_total", path="other", code="404") == 1
        assert rig.sample("scaler_router_queue_wait_seconds_count", path="other") == 0
