"""Replaying what happens around the rules: metric outages, pauses and pins.

``scaler simulate --outage START:END --pause START:END --pin START:END=N`` (each
repeatable; seconds from the trace's start, the window ``[START, END)``). A poll in
an outage reads nothing: every metric is ``Unavailable``, so the failures count and
the fallback of a ``--config`` policy applies, as in ``scaler run`` when Prometheus
and the proxies cannot be reached (the model and its scrapes run on). A pause or a
pin sets the controller's annotation on the simulated Deployment for the window.
The same ``scaler.policy.step`` as the controller's then decides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

from scaler.errors import quote
from scaler.policy import PAUSE_ANNOTATION, PIN_ANNOTATION
from scaler.simulate.bounds import MAX_REPLICAS, show_number
from scaler.simulate.types import OverrideWindow, SimulationError

KINDS = ("outage", "pause", "pin")
NO_ANNOTATIONS: Mapping[str, str] = {}


def parse_window(kind: str, text: str) -> OverrideWindow:
    """``START:END`` (a pin: ``START:END=N``) as a window; ``SimulationError`` names
    the option and the value when it is not one."""
    option = f"--{kind}"
    form = "START:END=N" if kind == "pin" else "START:END"
    span, equals, count = text.partition("=")
    if (kind == "pin") != bool(equals):
        raise SimulationError(
            f"{option} {quote(text)}: expected {form} (seconds from the trace's start)"
        )
    first, colon, second = span.partition(":")
    if not colon:
        raise SimulationError(f"{option} {quote(text)}: expected {form}, e.g. 600:900")
    start = _seconds(option, text, first)
    end = _seconds(option, text, second)
    if not start < end:
        raise SimulationError(
            f"{option} {quote(text)}: START {show_number(start)} is not before "
            f"END {show_number(end)}"
        )
    replicas = 0
    if kind == "pin":
        if not count.strip().isdigit() or not 1 <= int(count) <= MAX_REPLICAS:
            raise SimulationError(
                f"{option} {quote(text)}: N must be a whole number from 1 to {MAX_REPLICAS:,}"
            )
        replicas = int(count)
    return OverrideWindow(kind, start, end, replicas)


def check_windows(windows: Sequence[OverrideWindow], duration: float) -> None:
    """Each window ends within the trace, and no two of one kind overlap (which pin
    would hold?); a pause and a pin may overlap: the pause wins, as in the controller."""
    for window in windows:
        if window.end > duration:
            raise SimulationError(
                f"--{window.kind} {_show(window)}: END is after the trace's end "
                f"({show_number(duration)} s)"
            )
    for kind in KINDS:
        same = sorted((w for w in windows if w.kind == kind), key=lambda w: w.start)
        for before, after in pairwise(same):
            if after.start < before.end:
                raise SimulationError(
                    f"--{kind} {_show(before)} and --{kind} {_show(after)} overlap"
                )


def windows_at(windows: Sequence[OverrideWindow], now: float) -> tuple[Mapping[str, str], bool]:
    """The Deployment's annotations at ``now``, and whether the metrics are out."""
    outage = False
    annotations: dict[str, str] = {}
    for window in windows:
        if window.start <= now < window.end:
            if window.kind == "outage":
                outage = True
            elif window.kind == "pause":
                annotations[PAUSE_ANNOTATION] = "true"
            else:
                annotations[PIN_ANNOTATION] = str(window.replicas)
    return annotations or NO_ANNOTATIONS, outage


def _seconds(option: str, text: str, part: str) -> float:
    try:
        value = float(part)
    except ValueError:
        raise SimulationError(
            f"{option} {quote(text)}: {quote(part)} is not a number of seconds"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise SimulationError(f"{option} {quote(text)}: {quote(part)} is not a time >= 0")
    return value


def _show(window: OverrideWindow) -> str:
    text = f"{window.start:g}:{window.end:g}"
    return f"{text}={window.replicas}" if window.kind == "pin" else text
