"""Model residency: the ready model is loaded again after another model evicted it.

With ``OLLAMA_MAX_LOADED_MODELS=1`` (one model fits the pod's memory) and keep-alive
forever, a request for any other model makes Ollama's scheduler unload the ready model
(``server/sched.go``, ``findRunnerToUnload``), and nothing in Ollama loads it again. A
readiness that required the ready model loaded would then keep the pod out of the
Service for good (issue 12). So readiness requires the model only until it has been
loaded once (a new replica takes traffic only when it can answer at once); after that
the pod is ready while Ollama answers, and this module brings the ready model back:
once the pod has been idle for ``reload_after`` seconds and ``/api/ps`` does not list
it, one load-only request (``/api/generate`` without a prompt, ``keep_alive: -1``),
holding a slot like any request so that routers and the metrics see it. Failures back
off; each is counted and logged once (docs/proxy.md, "Model residency").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge

from scaler.errors import ScalerError
from scaler.proxy.admission import Admission, Draining, QueueFull

log = logging.getLogger("scaler.proxy")

BACKOFF_FIRST = 2.0
BACKOFF_MAX = 60.0
"""Seconds before retrying a failed reload; doubled at each failure in a row (a deleted
ready model fails until it is pulled again: one line a minute, not a flood)."""
PS_TIMEOUT = 2.0
"""Seconds to wait for ``/api/ps``."""
RELOAD_TIMEOUT = 330.0
"""Seconds a reload may take: Ollama abandons a stalled load after 5 min itself."""
RESULTS = ("ok", "error")


class ResidencyError(ScalerError):
    """Ollama could not say which models are loaded, or could not load the ready one."""


@dataclass(frozen=True, slots=True)
class ResidencyTiming:
    """Seconds. ``reload_after``: idle time before a reload, so that the follow-up
    requests a chat brings (Open WebUI asks the same model for a title and tags) do not
    evict the ready model again at once. ``check_every``: how often ``/api/ps`` is read
    when no request ends (an Ollama restart also empties it)."""

    reload_after: float
    check_every: float


def is_listed(model: str, ps: Any) -> bool:
    """Whether ``/api/ps``'s answer lists ``model`` (``name`` or ``model`` field; a name
    without a tag means ``:latest``)."""
    entries = ps.get("models") if isinstance(ps, dict) else None
    names = {
        entry.get(key)
        for entry in entries or []
        if isinstance(entry, dict)
        for key in ("name", "model")
    }
    return model in names or f"{model}:latest" in names


def wait_before_check(
    *, now: float, busy: bool, last_end: float, retry_at: float, timing: ResidencyTiming
) -> float:
    """Seconds until a reload may be considered (0: now). A busy pod is not reloaded:
    its requests are served, and the one that ends wakes the loop."""
    if busy:
        return timing.check_every
    return max(0.0, last_end + timing.reload_after - now, retry_at - now)


def build_residency_metrics(registry: CollectorRegistry) -> tuple[Counter, Gauge]:
    """``ollama_proxy_model_reloads_total{result}`` and ``..._ready_model_resident``."""
    reloads = Counter(
        "ollama_proxy_model_reloads_total",
        "Loads of --ready-model by the proxy after another model evicted it, by result.",
        ("result",),
        registry=registry,
    )
    for result in RESULTS:
        reloads.labels(result)
    resident = Gauge(
        "ollama_proxy_ready_model_resident",
        "1 when Ollama's /api/ps listed --ready-model at the proxy's last look, else 0.",
        registry=registry,
    )
    return reloads, resident


class Residency:
    """Readiness's memory of the first load, and the task that reloads the ready model.

    ``clock``: monotonic seconds. All methods run on the proxy's event loop.
    """

    def __init__(
        self,
        *,
        model: str,
        upstream: str,
        admission: Admission,
        timing: ResidencyTiming,
        registry: CollectorRegistry,
        num_thread: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.num_thread = num_thread  # loaded with the pod's threads (threads.py)
        self.base = upstream.rstrip("/")
        self.admission = admission
        self.timing = timing
        self.clock = clock
        self.loaded_once = False
        self.reloads, self.resident_gauge = build_residency_metrics(registry)
        self._last_end = float("-inf")
        self._retry_at = float("-inf")
        self._backoff = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def request_ended(self) -> None:
        """An inference request ended: the idle time starts again from now. The loop is
        woken only when the pod is idle, so a busy pod pays no task switch per request."""
        self._last_end = self.clock()
        if not (self.admission.active or self.admission.queued):
            self._wake.set()

    async def resident(self, session: aiohttp.ClientSession) -> bool:
        """Whether Ollama has the ready model loaded now; the first yes is remembered."""
        timeout = aiohttp.ClientTimeout(total=PS_TIMEOUT)
        try:
            async with session.get(self.base + "/api/ps", timeout=timeout) as answer:
                if answer.status != 200:
                    raise ResidencyError(f"Ollama answered {answer.status} to /api/ps")
                listed = is_listed(self.model, await answer.json(content_type=None))
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            raise ResidencyError(f"Ollama does not answer /api/ps: {error!r}") from error
        self.resident_gauge.set(1 if listed else 0)
        self.loaded_once = self.loaded_once or listed
        return listed

    def start(self, session: aiohttp.ClientSession) -> asyncio.Task[None]:
        """Run the reload loop; the app's cleanup context owns the task (``stop``)."""
        self._task = asyncio.create_task(self._run(session), name="scaler-proxy-residency")
        return self._task

    async def stop(self) -> None:
        """Cancel the loop and a reload in progress (its connection closes, so Ollama
        stops loading and the slot is freed); a draining pod loads nothing more."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self, session: aiohttp.ClientSession) -> None:
        while True:
            self._wake.clear()  # before the look: a request ending during it wakes the next
            delay = await self.check_once(session)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def check_once(self, session: aiohttp.ClientSession) -> float:
        """One look (the loop's body; tests drive it with a fake clock): reload the ready
        model if it is due; returns the seconds to sleep unless a request ends sooner."""
        wait = wait_before_check(
            now=self.clock(),
            busy=bool(self.admission.active or self.admission.queued),
            last_end=self._last_end,
            retry_at=self._retry_at,
            timing=self.timing,
        )
        if wait > 0:
            return wait
        try:
            if await self.resident(session) or not self.loaded_once:
                return self.timing.check_every  # resident, or start-up's warm-up still at it
        except ResidencyError:
            return self.timing.check_every  # Ollama down: /readyz says so; nothing to load into
        await self._reload(session)
        return self.timing.check_every

    async def _reload(self, session: aiohttp.ClientSession) -> None:
        if self.admission.active or self.admission.queued:
            return  # a request came in while /api/ps answered: it goes first
        started = self.clock()
        try:
            async with self.admission.slot():  # counted and guarded like any request
                await self._load(session)
        except (QueueFull, Draining):  # taken, or the pod is stopping: nothing to load
            return
        except ResidencyError as error:
            self.reloads.labels("error").inc()
            self._backoff = min(BACKOFF_MAX, self._backoff * 2 or BACKOFF_FIRST)
            self._retry_at = self.clock() + self._backoff
            log.warning(
                "reloading %s failed: %s; next try in %.0f s", self.model, error, self._backoff
            )
            return
        self.reloads.labels("ok").inc()
        self.resident_gauge.set(1)
        self._backoff, self._retry_at = 0.0, float("-inf")
        log.info(
            "reloaded %s after another model evicted it (%.1f s)",
            self.model,
            self.clock() - started,
        )

    async def _load(self, session: aiohttp.ClientSession) -> None:
        """A load-only request: no prompt, so Ollama loads and answers ``done_reason:
        load`` without generating; keep-alive forever, as the warm-up's."""
        body: dict[str, object] = {"model": self.model, "keep_alive": -1, "stream": False}
        if self.num_thread is not None:
            body["options"] = {"num_thread": self.num_thread}
        timeout = aiohttp.ClientTimeout(total=RELOAD_TIMEOUT)
        try:
            async with session.post(
                self.base + "/api/generate", json=body, timeout=timeout
            ) as answer:
                text = await answer.text()
        except (TimeoutError, aiohttp.ClientError) as error:
            raise ResidencyError(f"Ollama does not answer: {error!r}") from error
        if answer.status != 200:
            raise ResidencyError(f"Ollama answered {answer.status}: {text[:200]}")
