"""The pod's thread count on every native request (scaler/proxy/threads.py): Ollama
counts the node's cores, and reloads a model whose runner options change."""

from __future__ import annotations

import json
import math

import httpx
import ollama
import pytest

from scaler.proxy.app import build_app
from scaler.proxy.settings import ProxySettings
from scaler.proxy.threads import pin_threads
from scaler.quantity import parse_quantity
from tests.support.fake_ollama import LoggedRequest, RunningFakeOllama, running_fake_ollama
from tests.support.threaded_server import serve_in_thread
from tests.support.waits import wait_until
from tests.test_manifests_router import BUILDS, container, proxy_args

MODEL = "llama3.2"


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        pytest.param(
            "/api/chat",
            {"model": MODEL},
            {"model": MODEL, "options": {"num_thread": 2}},
            id="added",
        ),
        pytest.param(
            "/api/generate",
            {"model": MODEL, "options": {"num_thread": 8, "temperature": 0}},
            {"model": MODEL, "options": {"num_thread": 2, "temperature": 0}},
            id="the-pods-not-the-clients",
        ),
        pytest.param(
            "/api/embed", {"options": None}, {"options": {"num_thread": 2}}, id="null-options"
        ),
        pytest.param(
            "/v1/chat/completions", {"model": MODEL}, {"model": MODEL}, id="openai-untouched"
        ),
        pytest.param(
            "/api/chat", {"options": "fast"}, {"options": "fast"}, id="odd-options-untouched"
        ),
        pytest.param("/api/chat", [1, 2], [1, 2], id="not-an-object"),
    ],
)
def test_native_inference_bodies_carry_the_pods_threads(
    path: str, body: object, expected: object
) -> None:
    assert json.loads(pin_threads(path, json.dumps(body).encode(), 2)) == expected


def test_a_body_that_is_not_json_or_already_right_is_sent_as_it_came() -> None:
    assert pin_threads("/api/chat", b"{not json", 2) == b"{not json"
    same = json.dumps({"options": {"num_thread": 2}}).encode()
    assert pin_threads("/api/chat", same, 2) is same


def test_the_proxy_sends_its_threads_to_ollama_on_native_requests_only() -> None:
    settings_for = {"parallel": 1, "num_thread": 3}
    with running_fake_ollama(tokens=3) as fake:
        app = build_app(ProxySettings(upstream=fake.url, **settings_for))
        with serve_in_thread(app, handler_cancellation=True) as url:
            with ollama.Client(host=url) as client:
                client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])
                client.generate(model=MODEL, prompt="hi", options={"num_thread": 16})
                list(client.chat(model=MODEL, messages=[], stream=True))
            body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
            assert httpx.post(url + "/v1/chat/completions", json=body).status_code == 200
    sent = [r for r in fake.requests if r.path.startswith(("/api/chat", "/api/generate", "/v1/"))]
    assert [r.body.get("options", {}).get("num_thread") for r in sent] == [3, 3, 3, None]


@pytest.mark.parametrize("build", BUILDS)
def test_the_proxys_threads_match_the_ollama_containers_cpu_limit(build: str) -> None:
    limit = container(build, "ollama", "ollama")["resources"]["limits"]["cpu"]
    cores = parse_quantity(str(limit))
    assert proxy_args(build).num_thread == max(1, math.floor(cores)), (build, limit)


def test_the_ready_model_is_reloaded_with_the_pods_threads() -> None:
    settings = ProxySettings(
        upstream="http://127.0.0.1:1",  # replaced below
        ready_model=MODEL,
        num_thread=3,
        reload_after=0,
        residency_check=0.05,
    )
    with running_fake_ollama(tokens=2, max_loaded_models=1) as fake:
        app = build_app(settings.model_copy(update={"upstream": fake.url}))
        with serve_in_thread(app, handler_cancellation=True) as url, ollama.Client(host=url) as c:
            c.generate(model=MODEL, prompt="warm")
            c.generate(model="all-minilm", prompt="evicts the ready model")
            wait_until(lambda: _reloads(fake), what="the proxy's reload")
    assert _reloads(fake) and all(r.body["options"] == {"num_thread": 3} for r in _reloads(fake))


def _reloads(fake: RunningFakeOllama) -> list[LoggedRequest]:
    """The proxy's own load-only requests (no prompt, kept forever)."""
    return [
        r
        for r in fake.requests
        if r.path == "/api/generate" and "prompt" not in r.body and r.body.get("keep_alive") == -1
    ]
