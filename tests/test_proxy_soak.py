"""10,000 mixed requests through the proxy, with clients giving up at random and
Ollama failing now and then. Afterwards nothing may be left over: no queued request,
no request in flight, no slot held in Ollama, and every request accounted for."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx

from scaler.proxy.app import PROXY, build_app
from scaler.proxy.settings import ProxySettings
from tests.support.fake_ollama import running_fake_ollama
from tests.support.soak_traffic import KINDS, send_one
from tests.support.threaded_server import serve_in_thread
from tests.support.waits import until

REQUESTS = 10_000
CONCURRENCY = 48


async def test_ten_thousand_mixed_requests_leave_nothing_behind() -> None:
    rng = random.Random(2026)
    kinds = KINDS
    with running_fake_ollama(slots=2, tokens=4, tokens_per_second=4000) as fake:
        settings = ProxySettings(upstream=fake.url, parallel=2, max_queue=8)
        app = build_app(settings)
        proxy = app[PROXY]
        with serve_in_thread(app, handler_cancellation=True) as url:
            limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=16)
            gate = asyncio.Semaphore(CONCURRENCY)
            outcomes: Counter[str] = Counter()

            async def run(index: int, kind: str, give_up: float | None) -> None:
                async with gate:
                    if index % 250 == 0:
                        fake.fail_next(1, status=500, error="injected failure")
                    if index % 250 == 125:
                        fake.die_next(after_tokens=2)
                    outcomes[(await send_one(http, url, kind, give_up))[0]] += 1

            async with httpx.AsyncClient(timeout=30, limits=limits) as http:
                plan = [
                    (rng.choice(kinds), rng.uniform(0.0, 0.02) if rng.random() < 0.1 else None)
                    for _ in range(REQUESTS)
                ]
                await asyncio.gather(*(run(i, k, g) for i, (k, g) in enumerate(plan)))

            await until(
                lambda: (
                    (proxy.admission.active, proxy.admission.queued, fake.stats().active)
                    == (0, 0, 0)
                )
            )
            stats = fake.stats()
    assert sum(outcomes.values()) == REQUESTS
    assert (proxy.admission.active, proxy.admission.queued) == (0, 0)
    assert (stats.active, stats.waiting, stats.loading) == (0, 0, 0)
    assert stats.max_active_seen <= 2
    # 48 clients against 2 slots and 8 queue places: how many get a 503 rather than a
    # place depends on the machine's speed, so only a floor is checked.
    assert outcomes["200"] > REQUESTS // 5, outcomes
    assert outcomes["gave-up"] > 0 and outcomes["503"] > 0 and outcomes["500"] > 0
    assert stats.died > 0
