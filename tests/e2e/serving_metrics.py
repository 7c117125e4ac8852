"""The serving path's own metrics, read as Prometheus reads them (``/metrics``), so
each step of the journey can check what the autoscaler would see: gauges back to 0
when nothing is asked, each request counted once under the right path and code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

GAUGES = (
    "scaler_router_queue_depth",
    "scaler_router_requests_in_flight",
    "ollama_proxy_queue_depth",
    "ollama_proxy_requests_in_flight",
)
COUNTS = ("scaler_router_requests_total", "ollama_proxy_requests_total")


class Counts(Counter[tuple[str, str, str]]):
    """(metric, path, code) → requests, summed over the router or the proxies."""

    def since(self, earlier: Counts) -> dict[tuple[str, str, str], int]:
        changed = (key for key, value in self.items() if value != earlier[key])
        return {key: int(self[key] - earlier[key]) for key in changed}


async def scrape(
    http: aiohttp.ClientSession, urls: Iterable[str]
) -> tuple[dict[str, float], Counts]:
    """The in-flight and queue gauges (summed) and the request counts of ``urls``."""
    gauges: dict[str, float] = dict.fromkeys(GAUGES, 0.0)
    counts = Counts()
    for url in urls:
        async with http.get(url + "/metrics") as reply:
            text = await reply.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in gauges:
                    gauges[sample.name] += sample.value
                elif sample.name in COUNTS:
                    key = (sample.name, sample.labels["path"], sample.labels["code"])
                    counts[key] += int(sample.value)
    return gauges, counts
