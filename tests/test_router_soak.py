"""5,000 mixed requests through two routers over three pods (each behind its proxy, as
deployed), with clients giving up at random, while queued or while streaming, and
Ollama failing now and then. Afterwards every queue and in-flight gauge reads 0 on
every router and proxy, no fake holds a slot, no pod ever held more than its slots,
and every request is accounted for."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx

from scaler.proxy.forward import BUSY_HEADER
from scaler.sources.proxies import sum_series
from tests.support.router_rig import Rig, router_rig, router_rig_over
from tests.support.soak_traffic import KINDS, send_one

REQUESTS = 5_000
CONCURRENCY = 48
SLOTS = 2


async def _gauges(http: httpx.AsyncClient, url: str, names: tuple[str, ...]) -> float:
    text = (await http.get(url + "/metrics")).text
    return sum_series(text, names, source=url)


async def _settled(http: httpx.AsyncClient, rigs: list[Rig]) -> tuple[float, float]:
    """The routers' and the proxies' queue + in-flight gauges, read over HTTP, once
    they reach zero (or after 10 s)."""
    router_names = ("scaler_router_queue_depth", "scaler_router_requests_in_flight")
    proxy_names = ("ollama_proxy_queue_depth", "ollama_proxy_requests_in_flight")
    routers = proxies = -1.0
    for _ in range(200):
        routers = sum([await _gauges(http, rig.url, router_names) for rig in rigs])
        proxies = sum([await _gauges(http, p.url, proxy_names) for p in rigs[0].proxies])
        if routers == proxies == 0:
            break
        await asyncio.sleep(0.05)
    return routers, proxies


async def test_five_thousand_requests_with_random_cancels_leave_nothing_behind() -> None:
    rng = random.Random(11)
    fake = {"slots": SLOTS, "tokens": 4, "tokens_per_second": 4000}
    with (
        router_rig(pods=3, proxies=True, fake=fake, router={"max_queue": 16}) as one,
        router_rig_over(one, max_queue=16) as two,
    ):
        gate = asyncio.Semaphore(CONCURRENCY)
        outcomes: Counter[str] = Counter()
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=16)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:

            async def run(index: int, kind: str, give_up: float | None) -> None:
                async with gate:
                    pod = one.fakes[index % 3]
                    if index % 250 == 0:
                        pod.fail_next(1, status=500, error="injected failure")
                    if index % 250 == 125:
                        pod.die_next(after_tokens=2)
                    router = (one, two)[index % 2]
                    outcome, headers = await send_one(http, router.url, kind, give_up)
                    assert headers is None or BUSY_HEADER not in headers  # never leaks
                    outcomes[outcome] += 1

            plan = [
                (rng.choice(KINDS), rng.uniform(0.0, 0.02) if rng.random() < 0.1 else None)
                for _ in range(REQUESTS)
            ]
            await asyncio.gather(*(run(i, k, g) for i, (k, g) in enumerate(plan)))
            routers, proxies = await _settled(http, [one, two])
        stats = [fake.stats() for fake in one.fakes]
    assert sum(outcomes.values()) == REQUESTS
    assert (routers, proxies) == (0, 0)
    assert all((s.active, s.waiting, s.loading) == (0, 0, 0) for s in stats), stats
    assert all(s.max_active_seen <= SLOTS for s in stats), stats
    for rig in (one, two):
        assert (rig.router.dispatcher.queued, rig.router.dispatcher.in_flight) == (0, 0)
    # 48 clients against 6 slots and 2 x 16 queue places: how many are refused depends
    # on the machine's speed, so only floors are checked.
    assert outcomes["200"] > REQUESTS // 2, outcomes
    assert outcomes["gave-up"] > 0 and outcomes["500"] > 0, outcomes
    assert sum(s.died for s in stats) > 0
