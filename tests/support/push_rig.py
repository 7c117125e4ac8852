"""A controller over one target whose queue its routers push: stand-in or real routers
on loopback, the Deployment and Prometheus in memory, on a clock the test chooses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from scaler.config import ScalerConfig, load, parse_config
from scaler.controller.loop import Controller
from scaler.controller.metrics import build_metrics
from scaler.controller.push import PushFeed, push_feeds
from scaler.controller.reading import readers_for
from scaler.controller.target import TargetReconciler
from scaler.sources.proxies import ProxyScraper
from tests.support.fakes import FakeActuator, FakeClock, FakeDeployment, FakeSource
from tests.support.router_stand_ins import FakeResolver

HOST = "routers.test"
KEY = ("chatbot", "ollama")
LABELS = {"namespace": "chatbot", "deployment": "ollama"}


class WaitingClock(FakeClock):
    """A fake clock whose sleep lasts until the test moves time (here: never), so
    only a wake can end the loop's rest between polls."""

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.Event().wait()


class PushRig:
    """A controller over the default target, whose queue its routers push."""

    def __init__(
        self, session: aiohttp.ClientSession, addresses: list[str], port: int, clock: FakeClock
    ) -> None:
        self.config = push_config(port)
        self.clock = clock
        self.source = FakeSource({"queue": 0.0, "cpu": {}})
        self.actuator = FakeActuator({KEY: FakeDeployment(2)})
        self.registry = CollectorRegistry()
        self.metrics = build_metrics(self.registry, self.config)
        resolver = FakeResolver({HOST: addresses})
        target = self.config.targets[0]
        self.feeds = push_feeds(target, self.config, session, self.metrics, resolver=resolver)
        for feed in self.feeds.values():
            feed.clock = clock
        scraper = ProxyScraper(session, timeout=1.0, resolver=resolver)
        readers = readers_for(
            target, source=self.source, metrics=self.metrics, scraper=scraper, feeds=self.feeds
        )
        reconciler = TargetReconciler(
            target,
            config=self.config,
            readers=readers,
            actuator=self.actuator,
            metrics=self.metrics,
            is_leader=lambda: True,
        )
        self.controller = Controller(
            [reconciler],
            metrics=self.metrics,
            clock=clock,
            sleep=clock.sleep,
            push_min_interval=self.config.push_min_interval,
        )
        self.feed.on_change = lambda: self.controller.wake(target.key)

    @property
    def feed(self) -> PushFeed:
        return self.feeds["queue"]

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {**LABELS, **labels})

    def reads(self, source: str) -> float | None:
        return self.sample("scaler_metric_reads_total", metric="queue", source=source)

    def decisions(self, trigger: str) -> float | None:
        return self.sample("scaler_decisions_by_trigger_total", trigger=trigger)

    @asynccontextmanager
    async def running(self, *tasks: Any) -> AsyncIterator[None]:
        """``tasks`` run; all are cancelled and awaited after."""
        started = [asyncio.create_task(task, name="task") for task in tasks]
        try:
            yield
        finally:
            for task in started:
                task.cancel()
            await asyncio.gather(*started, return_exceptions=True)


def push_config(port: int, **top: Any) -> ScalerConfig:
    """The default configuration, its routers at ``HOST``:``port``, and ``top`` keys;
    Prometheus answers the queries "queue" and "cpu"."""
    data = load().model_dump(by_alias=True, exclude_none=True)
    queue, cpu = data["targets"][0]["metrics"]
    queue["query"], cpu["query"] = "queue", "cpu"
    queue["direct"].update(host=HOST, port=port)
    data.update(top)
    return parse_config(data)


class RealClock(FakeClock):
    """Unix time and real sleeps: a storm is about real CPU time."""

    def __call__(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
