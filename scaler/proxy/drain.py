"""The proxy's drain on SIGTERM: what happens to the requests it holds and queues.

Its own module because the two stacks want different things from it (docs/proxy.md,
"Drain"). Behind a router (``refuse``), a queued request is worth more elsewhere: it
gets 503 ``X-Scaler-Busy: draining`` at once and the router sends it to another pod.
With no router (the seed's stack, manifests/overlays/cpu-hpa), nobody re-sends it and
Open WebUI shows the 503 as the chat's error, so ``serve`` keeps the queued requests in
their places until the slots free up; only what still waits at the timeout is refused.
Either way new arrivals are refused and the answers holding slots stream to their end.
"""

from __future__ import annotations

import asyncio
import logging

from scaler.proxy.admission import Admission
from scaler.proxy.residency import Residency
from scaler.proxy.settings import DrainQueued

log = logging.getLogger("scaler.proxy")

STOPPING = "this Ollama pod is stopping"


async def drain(
    admission: Admission,
    residency: Residency | None,
    *,
    queued: DrainQueued,
    timeout: float,
) -> None:
    """Admit nothing new; refuse the queued requests now (``refuse``) or serve them
    (``serve``); wait until nothing holds or waits for a slot, at most ``timeout``
    seconds, then refuse what still waits (its 503 is written while the app shuts
    down, before the kill could reset the connection)."""
    waiting = admission.queued
    if queued == "refuse":
        # At once, busy: a router sends them to another pod now, rather than after
        # the drain with a 502 when this proxy stops listening.
        admission.close(STOPPING)
    else:
        admission.stop_admitting(STOPPING)
    if residency is not None:
        await residency.stop()  # load nothing more; a reload in progress ends
    log.info(
        "draining: %s %d queued request(s), %d running",
        "refused" if queued == "refuse" else "serving",
        waiting,
        admission.active,
    )
    # asyncio.wait, not asyncio.timeout: this runs in a task already cancelled by the
    # signal, where asyncio.timeout before Python 3.11.3 (Debian bookworm has 3.11.2)
    # raises CancelledError instead of TimeoutError (python/cpython#102780).
    idle = asyncio.ensure_future(admission.idle())
    done, _ = await asyncio.wait({idle}, timeout=timeout)
    if done:
        log.info("drained: nothing in flight")
        return
    idle.cancel()
    left = admission.queued
    admission.close(f"{STOPPING} and its queue did not drain in time")
    log.warning(
        "drain timed out after %s s with %d request(s) still running, %d queued refused",
        timeout,
        admission.active,
        left,
    )
