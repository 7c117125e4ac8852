"""A one-line progress bar for long simulations, drawn on a terminal only.

Most runs finish in well under a second, and a bar that flashes up and vanishes is
noise, so nothing is drawn until the run has taken ``delay`` seconds (2 s). Nothing is
ever drawn when the stream is not a terminal, so piped or captured output (CI logs, JSON
on stdout) stays clean. Redraws are throttled to one per ``interval`` (0.1 s): a
simulation calls ``update`` far more often than a person can read.

The clock is injected (a callable returning monotonic seconds) so tests need no sleeps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

Clock = Callable[[], float]

BAR_WIDTH = 30
"""Characters in the bar itself; the whole line stays under 80 columns."""


class Progress:
    """``with Progress(total) as p: ... p.update(done)``; ``close`` clears the line.

    ``total`` and ``done`` are in any one unit (the runner uses simulated seconds).
    ``label`` starts the line. ``delay`` and ``interval`` are in seconds of ``clock``.
    """

    def __init__(
        self,
        total: float,
        *,
        label: str = "simulating",
        stream: TextIO | None = None,
        clock: Clock = time.monotonic,
        delay: float = 2.0,
        interval: float = 0.1,
    ) -> None:
        self.total = total
        self.label = label
        # Resolved now, not at import, so pytest's capture and redirections apply.
        self._stream = sys.stderr if stream is None else stream
        self._clock = clock
        self._delay = delay
        self._interval = interval
        self._enabled = _is_terminal(self._stream)
        self._started = clock()
        self._last_draw: float | None = None
        self._drawn_width = 0
        self._closed = False

    def update(self, done: float) -> None:
        """Record that ``done`` of ``total`` is finished; redraw if it is time to."""
        if not self._enabled or self._closed:
            return
        now = self._clock()
        elapsed = now - self._started
        if elapsed < self._delay:
            return
        if self._last_draw is not None and now - self._last_draw < self._interval:
            return
        self._last_draw = now
        self._draw(render_line(self.label, done, self.total, elapsed))

    def close(self) -> None:
        """Erase the bar, if one was drawn, leaving the cursor at the start of the line.

        Safe to call twice.
        """
        if self._closed:
            return
        self._closed = True
        if self._drawn_width:
            self._stream.write("\r" + " " * self._drawn_width + "\r")
            self._stream.flush()
            self._drawn_width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _draw(self, line: str) -> None:
        # Pad to the previous width so a shorter line fully covers a longer one.
        self._stream.write("\r" + line.ljust(self._drawn_width))
        self._stream.flush()
        self._drawn_width = max(self._drawn_width, len(line))


def render_line(label: str, done: float, total: float, elapsed: float) -> str:
    """``simulating [#########.....]  31%  12 s, ~27 s left``; ``elapsed`` in seconds.

    The estimate assumes the rest goes at the average pace so far.
    """
    fraction = 1.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
    filled = round(fraction * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    line = f"{label} [{bar}] {fraction:4.0%}  {elapsed:.0f} s"
    if 0 < fraction < 1:
        line += f", ~{elapsed * (1 - fraction) / fraction:.0f} s left"
    return line


def _is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal; a closed or odd stream counts as not one."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
