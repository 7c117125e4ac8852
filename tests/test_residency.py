"""Model residency: the fake evicts as Ollama does, and the proxy brings the ready model
back (scaler/proxy/residency.py; docs/proxy.md, "Model residency").

The decisions run on a fake clock (``check_once``); the proxy's own loop runs on real
time against a fake Ollama on loopback, with bounds of a second or two.
"""

from __future__ import annotations

import concurrent.futures
import logging

import aiohttp
import httpx
import pytest
from prometheus_client import CollectorRegistry

from scaler.proxy.admission import Admission
from scaler.proxy.residency import (
    BACKOFF_FIRST,
    Residency,
    ResidencyTiming,
    is_listed,
    wait_before_check,
)
from tests.support.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.support.fake_ollama_evict import pick_victim

READY = "llama3.2:latest"
OTHER = "gemma3:1b"
MODELS = (READY, OTHER)


def _load(fake: RunningFakeOllama, model: str) -> None:
    """The warm-up's load-only request, straight to the fake."""
    body = {"model": model, "keep_alive": -1, "stream": False}
    assert httpx.post(f"{fake.url}/api/generate", json=body).status_code == 200


def _chat(url: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    return httpx.post(f"{url}/api/chat", json=body, timeout=10.0)


@pytest.mark.parametrize(
    ("keep", "users", "victim"),
    [
        pytest.param({"a": None, "b": 300.0}, {}, "b", id="forever-sorts-last"),
        pytest.param({"b": 60.0, "a": 60.0}, {}, "a", id="same-keep-alive-by-name"),
        pytest.param({"a": 60.0, "b": 300.0}, {"a": 1}, "b", id="idle-first"),
        pytest.param({"a": 60.0, "b": 300.0}, {"a": 1, "b": 2}, "a", id="all-busy-shortest"),
    ],
)
def test_the_fake_picks_the_victim_ollamas_scheduler_picks(
    keep: dict[str, float | None], users: dict[str, int], victim: str
) -> None:
    assert pick_victim(keep, users) == victim


def test_the_fake_unloads_the_ready_model_for_another_one_once_it_is_idle() -> None:
    with running_fake_ollama(models=MODELS, max_loaded_models=1, tokens_per_second=50) as fake:
        _load(fake, READY)
        assert list(fake.loaded()) == [READY]
        with httpx.Client(base_url=fake.url, timeout=10.0) as http:
            with http.stream("POST", "/api/chat", json=_body(READY)) as streaming:
                fake.wait_until(lambda s: s.active == 1)
                other = _async_chat(fake.url, OTHER)
                fake.wait_until(lambda s: s.loading == 1)
                assert list(fake.loaded()) == [READY]  # busy: the load waits for it
                streaming.read()
            assert other.result(timeout=10.0).status_code == 200
        assert list(fake.loaded()) == [OTHER]


def test_without_a_limit_the_fake_keeps_every_model_as_before() -> None:
    with running_fake_ollama(models=MODELS) as fake:
        _load(fake, READY)
        assert _chat(fake.url, OTHER).status_code == 200
        assert set(fake.loaded()) == {READY, OTHER}


def _body(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


def _async_chat(url: str, model: str) -> concurrent.futures.Future[httpx.Response]:
    """A chat sent from another thread: the caller goes on while it waits."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(_chat, url, model)
    pool.shutdown(wait=False)
    return future


@pytest.mark.parametrize(
    ("ps", "listed"),
    [
        pytest.param({"models": [{"name": "llama3.2:latest"}]}, True, id="tag-implied"),
        pytest.param({"models": [{"model": "llama3.2:latest"}]}, True, id="model-field"),
        pytest.param({"models": [{"name": "llama3.2:1b"}]}, False, id="other-tag"),
        pytest.param({"models": None}, False, id="null"),
        pytest.param(["llama3.2"], False, id="not-an-object"),
    ],
)
def test_ps_lists_the_model_by_name_or_model(ps: object, listed: bool) -> None:
    assert is_listed("llama3.2", ps) is listed


TIMING = ResidencyTiming(reload_after=5.0, check_every=30.0)


@pytest.mark.parametrize(
    ("now", "busy", "retry_at", "wait"),
    [
        pytest.param(100.0, True, 0.0, 30.0, id="busy: the ending request wakes it"),
        pytest.param(101.0, False, 0.0, 4.0, id="idle 1 s of 5"),
        pytest.param(105.0, False, 0.0, 0.0, id="idle long enough"),
        pytest.param(105.0, False, 108.0, 3.0, id="backing off"),
    ],
)
def test_a_reload_waits_for_an_idle_pod_and_the_backoff(
    now: float, busy: bool, retry_at: float, wait: float
) -> None:
    kwargs = {"busy": busy, "last_end": 100.0, "retry_at": retry_at, "timing": TIMING}
    assert wait_before_check(now=now, **kwargs) == wait


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _residency(fake: RunningFakeOllama, clock: Clock) -> tuple[Residency, CollectorRegistry]:
    registry = CollectorRegistry()
    admission = Admission(parallel=1, max_queue=0)
    residency = Residency(
        model="llama3.2",
        upstream=fake.url,
        admission=admission,
        timing=TIMING,
        registry=registry,
        clock=clock,
    )
    return residency, registry


def _reloads(fake: RunningFakeOllama) -> int:
    """Load-only requests the fake received (the tests' warm-up included)."""
    return sum(
        1 for r in fake.requests if r.path == "/api/generate" and r.body.get("prompt") is None
    )


def _count(registry: CollectorRegistry, result: str) -> float:
    value = registry.get_sample_value("ollama_proxy_model_reloads_total", {"result": result})
    return value or 0.0


async def test_timeline_evicted_then_reloaded_after_the_idle_time() -> None:
    clock = Clock()
    with running_fake_ollama(models=MODELS, max_loaded_models=1) as fake:
        residency, registry = _residency(fake, clock)
        async with aiohttp.ClientSession() as session:
            assert await residency.check_once(session) == 30.0  # t=0: not loaded yet, waits
            assert not residency.loaded_once and _reloads(fake) == 0  # the warm-up's job
            _load(fake, READY)
            assert await residency.check_once(session) == 30.0 and residency.loaded_once
            assert _chat(fake.url, OTHER).status_code == 200  # evicts the ready model
            clock.now = 100.0
            residency.request_ended()
            clock.now = 101.0
            assert await residency.check_once(session) == 4.0  # t=101: idle 1 s of 5
            assert _reloads(fake) == 1  # the warm-up's only
            async with residency.admission.slot():  # t=105, busy: nothing loads
                clock.now = 105.0
                assert await residency.check_once(session) == 30.0
            assert await residency.check_once(session) == 30.0  # t=105 idle: reloaded
        assert list(fake.loaded()) == [READY] and _reloads(fake) == 2
    assert _count(registry, "ok") == 1 and _count(registry, "error") == 0
    assert registry.get_sample_value("ollama_proxy_ready_model_resident") == 1


async def test_timeline_a_failing_reload_backs_off_and_logs_each_failure_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    caplog.set_level(logging.INFO, "scaler.proxy")
    with running_fake_ollama(models=MODELS, max_loaded_models=1) as fake:
        residency, registry = _residency(fake, clock)
        _load(fake, READY)
        async with aiohttp.ClientSession() as session:
            await residency.check_once(session)
            fake.remove(READY)  # deleted from the admin page: every reload fails (404)
            clock.now = 10.0
            await residency.check_once(session)  # t=10: fails, next at 12
            clock.now = 11.0
            assert await residency.check_once(session) == 1.0  # t=11: backing off
            clock.now = 12.0
            await residency.check_once(session)  # t=12: fails again, next at 16
            clock.now = 15.0
            assert await residency.check_once(session) == 1.0
            assert _count(registry, "error") == 2 and _reloads(fake) == 1 + 2  # warm-up, 2 tries
            fake.install(READY)  # pulled again
            clock.now = 16.0
            await residency.check_once(session)  # t=16: loads
        assert _count(registry, "ok") == 1 and list(fake.loaded()) == [READY]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "404" in warnings[0] and f"{BACKOFF_FIRST:.0f} s" in warnings[0]
    assert any("reloaded llama3.2" in r.getMessage() for r in caplog.records)
