"""``scaler router`` between the official ``ollama`` client and fake Ollama pods.

Every server is real and on 127.0.0.1 (router, pods' proxies, fake Ollamas), each in
its own thread and loop; the fakes count how many requests they hold at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time

import httpx
import ollama
import pytest

from scaler.router.endpoints import EndpointState
from tests.support.fake_ollama import running_fake_ollama
from tests.support.router_rig import MODEL, Rig, router_rig, router_rig_over


def _chat(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


def _prompts_seen(rig: Rig, index: int) -> list[str]:
    """The user messages pod ``index`` received, in order."""
    return [
        r.body["messages"][-1]["content"]
        for r in rig.fakes[index].requests
        if r.path == "/api/chat" and isinstance(r.body, dict)
    ]


def _held(rig: Rig) -> int:
    return rig.router.dispatcher.queued + rig.router.dispatcher.in_flight


def _chat_in_thread(url: str, content: str, results: dict[str, str]) -> threading.Thread:
    def run() -> None:
        try:
            with ollama.Client(host=url) as client:
                answer = client.chat(model=MODEL, messages=_chat(content))
            results[content] = answer.message.content or ""
        except ollama.ResponseError as error:
            results[content] = f"error {error.status_code}: {error.error}"

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_streamed_chat_generate_and_openai_sse_go_through_unchanged() -> None:
    with router_rig(pods=2, proxies=True) as rig, ollama.Client(host=rig.url) as client:
        chunks = list(client.chat(model=MODEL, messages=_chat("hi"), stream=True))
        assert len(chunks) > 2 and chunks[-1].done
        answer = client.generate(model=MODEL, prompt="why?")
        assert answer.done and answer.response
        with httpx.stream(
            "POST",
            rig.url + "/v1/chat/completions",
            json={"model": MODEL, "messages": _chat("hi"), "stream": True},
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in response.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        tags = client.list()
        assert {m.model for m in tags.models} >= {"llama3.2:latest"}
        rig.wait_idle()
        assert rig.sample("scaler_router_requests_total", path="/api/chat", code="200") == 1


def test_a_pod_added_mid_burst_takes_the_oldest_queued_request_first() -> None:
    fake = {"slots": 1, "tokens": 100, "tokens_per_second": 100}
    with router_rig(pods=3, ready=2, proxies=True, fake=fake) as rig:
        results: dict[str, str] = {}
        threads = []
        for i in range(6):
            threads.append(_chat_in_thread(rig.url, f"q{i}", results))
            # arrivals in a known order: each one is held before the next is sent
            rig.wait_until(lambda n=i + 1: _held(rig) == n)
        rig.wait_until(lambda: rig.router.dispatcher.queued == 4)
        rig.set_pods(rig.snapshot(0, 1, 2))
        for thread in threads:
            thread.join(10)
        assert set(results) == {f"q{i}" for i in range(6)}
        assert not any(v.startswith("error") for v in results.values()), results
        # q0 and q1 took the two first pods; the new pod's first request is q2, the
        # oldest waiting, not a new arrival.
        assert _prompts_seen(rig, 2)[0] == "q2"
        rig.wait_idle()


def test_a_removed_or_terminating_pod_finishes_its_answer_and_gets_nothing_new() -> None:
    fake = {"slots": 1, "tokens": 40, "tokens_per_second": 100}
    for state in (None, EndpointState.TERMINATING, EndpointState.NOT_READY):
        with (
            router_rig(pods=2, proxies=True, fake=fake) as rig,
            ollama.Client(host=rig.url) as client,
        ):
            stream = client.chat(model=MODEL, messages=_chat("long"), stream=True)
            first = next(iter(stream))
            assert not first.done
            busy = 0 if rig.fakes[0].stats().active else 1
            keep = 1 - busy
            if state is None:
                rig.set_pods(rig.snapshot(keep))
            else:
                rig.set_pods({**rig.snapshot(keep), **rig.snapshot(busy, state=state)})
            rest = list(stream)
            assert rest[-1].done and rest[-1].done_reason == "stop"
            client.chat(model=MODEL, messages=_chat("next"))
            assert _prompts_seen(rig, busy) == ["long"]
            assert _prompts_seen(rig, keep) == ["next"]
            rig.wait_idle()
            if state is None:  # forgotten after its last request
                assert set(rig.router.dispatcher.pods) == {f"pod-{keep}"}


def test_a_full_queue_gets_503_at_once_with_retry_after_and_ollamas_error_body() -> None:
    fake = {"slots": 1, "tokens": 50, "tokens_per_second": 50}
    with router_rig(pods=1, fake=fake, router={"max_queue": 1}) as rig:
        results: dict[str, str] = {}
        first = _chat_in_thread(rig.url, "a", results)
        rig.wait_until(lambda: rig.router.dispatcher.in_flight == 1)
        second = _chat_in_thread(rig.url, "b", results)
        rig.wait_until(lambda: rig.router.dispatcher.queued == 1)
        response = httpx.post(rig.url + "/api/chat", json={"model": MODEL, "messages": []})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json() == {
            "error": "server busy, please try again: the queue of 1 requests is full"
        }
        with pytest.raises(ollama.ResponseError) as raised, ollama.Client(host=rig.url) as c:
            c.chat(model=MODEL, messages=_chat("c"))
        assert raised.value.status_code == 503
        first.join(10)
        second.join(10)
        assert results == {"a": results["a"], "b": results["b"]} and "error" not in str(results)
        assert rig.sample("scaler_router_rejected_total", reason="queue_full") == 2


def test_no_ready_pod_answers_503_saying_so_instead_of_hanging() -> None:
    with router_rig(pods=1, ready=0, router={"no_pod_wait": 0}) as rig:
        response = httpx.post(rig.url + "/api/chat", json={"model": MODEL, "messages": []})
        assert response.status_code == 503
        assert "no Ollama pod is ready" in response.json()["error"]
        assert httpx.get(rig.url + "/api/tags").status_code == 503
        assert rig.sample("scaler_router_rejected_total", reason="no_ready_pod") == 1


def test_a_queued_request_waits_out_a_readiness_flap_then_is_served() -> None:
    with router_rig(pods=1, router={"no_pod_wait": 30}) as rig:
        rig.set_pods(rig.snapshot(0, state=EndpointState.NOT_READY))
        results: dict[str, str] = {}
        thread = _chat_in_thread(rig.url, "patient", results)
        rig.wait_until(lambda: rig.router.dispatcher.queued == 1)
        rig.set_pods(rig.snapshot(0))
        thread.join(10)
        assert not results["patient"].startswith("error")


def test_a_queued_request_gets_503_when_no_pod_comes_back_in_time() -> None:
    with router_rig(pods=1, router={"no_pod_wait": 0.2}) as rig:
        rig.set_pods({})
        results: dict[str, str] = {}
        thread = _chat_in_thread(rig.url, "doomed", results)
        thread.join(10)
        assert results["doomed"].startswith("error 503: server busy")
        assert "no Ollama pod is ready" in results["doomed"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        pytest.param(b"{not json", 400, "request body is not valid JSON", id="malformed"),
        pytest.param(b"[1, 2]", 400, "must be a JSON object, not list", id="array"),
        pytest.param(b"", 400, "not valid JSON", id="empty"),
    ],
)
def test_malformed_inference_requests_are_refused_before_taking_a_slot(
    body: bytes, status: int, message: str
) -> None:
    with router_rig(pods=1) as rig:
        response = httpx.post(rig.url + "/api/generate", content=body)
        assert response.status_code == status
        assert message in response.json()["error"]
        assert rig.fakes[0].requests == []
        assert rig.sample("scaler_router_rejected_total", reason="bad_request") == 1


def test_a_body_over_the_limit_gets_413_naming_the_limit() -> None:
    with router_rig(pods=1, router={"max_body": 2048}) as rig:
        body = json.dumps({"model": MODEL, "prompt": "x" * 4096})
        response = httpx.post(rig.url + "/api/generate", content=body)
        assert response.status_code == 413
        assert "over 2048 bytes" in response.json()["error"]


def test_unknown_paths_pass_through_and_management_goes_to_the_writer() -> None:
    with (
        running_fake_ollama() as writer,
        router_rig(pods=1, router={"management_upstream": writer.url}) as rig,
    ):
        assert httpx.get(rig.url + "/no/such/path").status_code == 404
        pull = httpx.post(rig.url + "/api/pull", json={"model": "llama3.2", "stream": False})
        assert pull.status_code == 200
        data = b"\0" * (3 << 20)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()  # checked, as Ollama does
        blob = httpx.post(rig.url + f"/api/blobs/{digest}", content=data)
        assert blob.status_code == 201
        assert httpx.head(rig.url + f"/api/blobs/{digest}").status_code == 200
        assert [r.path for r in writer.requests] == ["/api/pull"] + [f"/api/blobs/{digest}"] * 2
        assert [r.path for r in rig.fakes[0].requests] == ["/no/such/path"]


def test_a_silent_model_load_is_waited_out_with_no_read_timeout() -> None:
    with router_rig(pods=1, proxies=True, fake={"load_delay": 1.5, "tokens": 3}) as rig:
        with ollama.Client(host=rig.url) as client:
            answer = client.generate(model=MODEL, prompt="first of the day")
        assert answer.done and answer.load_duration and answer.load_duration > 1e9


def test_cancelling_while_queued_or_streaming_frees_everything_at_once() -> None:
    fake = {"slots": 1, "tokens": 500, "tokens_per_second": 100}
    with router_rig(pods=1, proxies=True, fake=fake) as rig:
        with httpx.Client(timeout=10) as http:
            body = {"model": MODEL, "messages": _chat("x")}
            with http.stream("POST", rig.url + "/api/chat", json=body) as running:
                chunks = running.iter_bytes()  # held: a dropped iterator closes the stream
                next(chunks)
                queued = threading.Thread(
                    target=lambda: _give_up(rig.url, body, after=0.2), daemon=True
                )
                queued.start()
                rig.wait_until(lambda: rig.router.dispatcher.queued == 1)
                queued.join(5)
                rig.wait_until(lambda: rig.router.dispatcher.queued == 0)
            # the streaming client closed its connection: the router, the proxy and
            # the fake all let go of the slot
            rig.wait_idle(5)
        assert rig.fakes[0].stats().cancelled == 1
        assert _prompts_seen(rig, 0) == ["x"]  # the cancelled queued one never arrived


def _give_up(url: str, body: dict[str, object], *, after: float) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/api/chat", json=body, timeout=httpx.Timeout(5, read=after))


def test_a_pod_that_cannot_be_reached_is_passed_over_and_one_that_dies_ends_cleanly() -> None:
    with router_rig(pods=2, fake={"tokens": 10}) as rig, ollama.Client(host=rig.url) as client:
        rig.fakes[0].stop()
        for _ in range(3):
            assert client.chat(model=MODEL, messages=_chat("hi")).done
        assert rig.sample("scaler_router_redispatches_total", reason="connect_failed") >= 1
        rig.fakes[1].die_next(after_tokens=3)
        with pytest.raises(ollama.ResponseError, match="closed the stream"):
            list(client.chat(model=MODEL, messages=_chat("hi"), stream=True))
        rig.fakes[1].stop()
        with pytest.raises(ollama.ResponseError) as raised:
            client.chat(model=MODEL, messages=_chat("hi"))
        assert raised.value.status_code == 502
        rig.wait_until(lambda: rig.router.dispatcher.in_flight == 0)


def test_two_routers_on_the_same_pods_never_exceed_a_pods_slots() -> None:
    fake = {"slots": 1, "tokens": 5, "tokens_per_second": 500}
    with router_rig(pods=3, proxies=True, fake=fake) as one:
        with router_rig_over(one) as two:
            errors: list[str] = []

            def client(url: str, n: int) -> None:
                with ollama.Client(host=url) as c:
                    for i in range(n):
                        try:
                            c.chat(model=MODEL, messages=_chat(f"{url}-{i}"))
                        except ollama.ResponseError as error:
                            errors.append(str(error))

            threads = [
                threading.Thread(target=client, args=(url, 15))
                for url in (one.url, two.url)
                for _ in range(4)
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert time.monotonic() - started < 60
        assert errors == []
        assert all(fake.stats().max_active_seen == 1 for fake in one.fakes)
        assert sum(fake.stats().served for fake in one.fakes) == 8 * 15
        refused = one.sample("scaler_router_redispatches_total", reason="slot_taken") + (
            two.sample("scaler_router_redispatches_total", reason="slot_taken")
        )
        assert refused > 0  # the routers did contend, and the proxies settled it


def test_time_in_queue_and_time_to_first_byte_are_measured_apart() -> None:
    fake = {"slots": 1, "tokens": 3, "prefill": 0.3}
    with router_rig(pods=1, fake=fake) as rig, ollama.Client(host=rig.url) as client:
        client.chat(model=MODEL, messages=_chat("a"))
        rig.wait_idle()
        labels = {"path": "/api/chat"}
        assert rig.sample("scaler_router_queue_wait_seconds_count", **labels) == 1
        assert rig.sample("scaler_router_queue_wait_seconds_sum", **labels) < 0.1  # a free pod
        rig.wait_until(
            lambda: rig.sample("scaler_router_time_to_first_byte_seconds_count", **labels) == 1
        )
        assert rig.sample("scaler_router_time_to_first_byte_seconds_sum", **labels) >= 0.3


def test_a_stopping_pod_refuses_new_work_and_the_router_sends_it_elsewhere() -> None:
    """Between the proxy's SIGTERM and the slice marking the pod terminating, the
    router may still pick it: the draining proxy refuses and the request moves on."""
    with router_rig(pods=2, proxies=True) as rig, ollama.Client(host=rig.url) as client:
        draining = rig.proxies[0]
        draining.call(draining.proxy.drain)  # nothing held: returns at once, stays draining
        for _ in range(4):
            assert client.chat(model=MODEL, messages=_chat("hi")).done
        assert _prompts_seen(rig, 0) == [] and len(_prompts_seen(rig, 1)) == 4
        assert rig.sample("scaler_router_redispatches_total", reason="draining") >= 1
        assert rig.sample("scaler_router_redispatches_total", reason="slot_taken") == 0
