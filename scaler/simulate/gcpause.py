"""Pausing CPython's cyclic garbage collector around the simulator's bulk work."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the duration of the block.

    Loading a week-long trace and replaying it allocate millions of objects, none in
    reference cycles, while a few huge lists live on (the trace's service times, the
    waits collected so far). The collector would scan those lists over and over, a
    tenth of a replay's time and a quarter of a load's. Reference counting still
    frees everything; the collector is back on, if it was, when the block ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
