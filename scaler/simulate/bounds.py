"""How long, how busy and how large a simulation may be.

The runner steps through every simulated second and keeps a record per second and per
request, so memory and time grow with the duration, the requests and the pods. A
trace with a gap of 1e18 s or a rate of 1e308 requests/s would run for ever or end in
a ``MemoryError``; these bounds refuse such input up front, with a clear message,
before anything is drawn. They sit well above what the simulator is for: the
built-in scenarios run one day at most, and the benchmark (a week at 1 s resolution,
about 605,000 requests) takes ~10 s and ~140 MiB per policy.
"""

from __future__ import annotations

import math

from scaler.simulate.types import SimulationError, TraceError

DAY = 86400.0
MAX_DURATION = 30 * DAY
"""Seconds a trace may cover: a month, four times the benchmark's week."""
MAX_REQUESTS = 5_000_000
"""Requests a trace may offer (for a ``rate``, the expected count): about eight times
the benchmark's week; each costs some 100 bytes per policy."""
MAX_ROWS = int(MAX_DURATION)
"""Data rows a CSV trace may have: one per second of the longest trace. Rows may be
closer than a second, so the duration alone does not bound them."""
MAX_REPLICAS = 10_000
"""Pods a policy may ask for (``static:N``, a config's ``maxReplicas``, ``--capacity``)."""
MAX_PARALLEL = 1024
"""Slots per pod (``--parallel``, Ollama's ``OLLAMA_NUM_PARALLEL``)."""
MAX_TOKENS_PER_SECOND = 1e9
"""Prompt or completion tokens per second of one pod."""
MAX_CPU_TARGET = 1000.0
"""Percent of the pods' CPU request (``--cpu-target``); a pod reaches at most 100 %."""


def check_load(duration: float, requests: float, *, where: str, largest: str = "") -> None:
    """Raise ``TraceError`` when a trace of ``duration`` seconds offering ``requests``
    (expected) requests is beyond the bounds. ``where`` names the trace; ``largest``,
    if given, says where most of the load is (e.g. ``rate 1e+308 at 0 s``)."""
    if not duration <= MAX_DURATION:
        raise TraceError(
            f"{where}: covers {_seconds(duration)}, more than the "
            f"{_seconds(MAX_DURATION)} ({MAX_DURATION / DAY:g} days) the simulator runs"
        )
    if not requests <= MAX_REQUESTS:
        hint = f" (the largest: {largest})" if largest else ""
        raise TraceError(
            f"{where}: offers {requests:.3g} requests{hint}, more than the "
            f"{MAX_REQUESTS:,} the simulator runs"
        )


def check_range(option: str, value: float, lowest: float, highest: float) -> None:
    """Raise ``SimulationError`` unless ``lowest <= value <= highest`` (NaN never is):
    a non-finite or absurd option would otherwise fail deep in the run, or never end."""
    if not lowest <= value <= highest:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        shown = shown if len(shown) <= 12 else shown[:12] + "…"
        raise SimulationError(
            f"{option} {shown} is out of range ({show_number(lowest)} to {show_number(highest)})"
        )


def show_number(value: float) -> str:
    """``value`` for a message: whole numbers with thousands separators, others
    as ``%g``; never more than a short prefix of a huge whole number."""
    if isinstance(value, int) or (math.isfinite(value) and value.is_integer()):
        text = f"{int(value):,}"
        return text if len(text) <= 16 else f"{value:.3g}"
    return f"{value:g}"


def _seconds(seconds: float) -> str:
    return f"{show_number(seconds)} s"
