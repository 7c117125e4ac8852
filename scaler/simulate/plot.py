"""A PNG of the simulation: the load on top, then one panel per policy, stacked.

The top panel shows arrivals per minute. Each policy panel shows replicas (desired,
dashed, and ready, solid; left axis) and the queue depth (filled; right axis). All
panels share the time axis, and the policy panels share both y scales, so a taller
queue really is a longer queue. The load is drawn once, above the policies, rather than
a third y axis in every panel: three scales in one panel cannot be read at a glance.

Long traces are cut into at most ``MAX_POINTS`` buckets of a round length (1 s, 5 s,
... 10 min), and each bucket shows its *maximum*: a 30 s queue spike or a one-minute
crowd stays visible in a 7-day plot, where a mean would flatten it. Replica-seconds
and other totals are in the panel titles, computed on the full data.

Rendering uses matplotlib's Agg canvas directly (no pyplot, no display, no change to
the process-wide backend), and matplotlib is imported only when a plot is asked for.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from scaler.simulate.atomic import OutputBatch, StrPath, atomic_binary
from scaler.simulate.report import format_seconds, format_share, routing_words
from scaler.simulate.timeline_csv import check_timelines
from scaler.simulate.types import PolicyResult

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_POINTS = 2_000
"""Most buckets per series: enough for a 1,200-pixel-wide plot, fast for 7 days."""

_ROUND_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600)
"""Bucket lengths in seconds; round ones, so "each point is 10 min" is easy to say."""

_ARRIVALS = "#9aa5b1"
_DESIRED = "#2f7ed8"
_READY = "#0b2e59"
_QUEUE = "#e8590c"
_BURST = "#c92a2a"
_DASHED = (0, (4, 2))
_HOUR_STEPS = (1, 2, 3, 6, 12, 24)
_MAX_HOUR_TICKS = 12

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Frame:
    """The x axis every panel shares: bucket starts in axis units (minutes or hours)."""

    x: Floats
    x_end: float
    bucket: int
    unit: float


def write_plot(
    path: StrPath,
    arrivals_per_second: array[int],
    results: Sequence[PolicyResult],
    *,
    title: str,
    burst_at: float | None = None,
    batch: OutputBatch | None = None,
) -> None:
    """Render the runs to a PNG at ``path``, replacing it atomically (when ``batch``
    commits, if one is given).

    ``arrivals_per_second`` and every timeline hold one entry per second. ``burst_at``
    (seconds), when known, is marked with a vertical line in every panel. Raises
    ``ValueError`` for an empty trace or timelines of the wrong length, and
    ``FileNotFoundError`` for a missing directory; nothing is created then.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(arrivals_per_second)
    if n == 0:
        raise ValueError("nothing to plot: the trace is empty")
    check_timelines(n, results)
    bucket = bucket_seconds(n)
    unit, unit_name = _time_unit(n)
    frame = _Frame(np.arange(0, n, bucket, dtype=np.float64) / unit, n / unit, bucket, unit)

    heights = [1.3] + [2.2] * len(results)
    fig = Figure(figsize=(12, 1.2 + sum(heights)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(heights), 1, sharex=True, height_ratios=heights, squeeze=False)
    _draw_load(axes[0, 0], arrivals_per_second, frame)
    replicas_top = _headroom(
        max((max(*r.timeline.desired, *r.timeline.ready, 0) for r in results), default=0) + 0.5
    )
    queue_top = _headroom(max((max(r.timeline.queue) for r in results), default=0))
    for row, result in zip(axes[1:], results, strict=True):
        _draw_policy(row[0], result, frame, replicas_top=replicas_top, queue_top=queue_top)
    for ax in axes[:, 0]:
        if burst_at is not None:
            ax.axvline(burst_at / unit, color=_BURST, lw=1, ls=":")
        ax.set_xlim(0, frame.x_end)
    _label_time_axis(axes[-1, 0], n, unit_name, bucket)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    _legend(fig, with_burst=burst_at is not None)
    with atomic_binary(path, batch) as f:
        fig.savefig(f, format="png")


def _draw_load(ax: Axes, arrivals_per_second: array[int], frame: _Frame) -> None:
    """The top panel: arrivals per minute as a grey area, total requests as its title."""
    per_minute, starts = arrivals_per_minute(arrivals_per_second, frame.bucket)
    x, y = _closed_step(starts / frame.unit, per_minute, frame.x_end)
    ax.fill_between(x, y, step="post", color=_ARRIVALS, lw=0)
    ax.set_ylabel("arrivals\n/ min")
    ax.set_title(f"load: {sum(arrivals_per_second):,} requests", loc="left", fontsize=11)
    ax.set_ylim(0, _headroom(float(per_minute.max(initial=0))))
    _style(ax)
    ax.spines["right"].set_visible(False)


def _draw_policy(
    ax: Axes,
    result: PolicyResult,
    frame: _Frame,
    *,
    replicas_top: float,
    queue_top: float,
) -> None:
    """One policy: replicas on ``ax`` (left), queue depth on a twin axis (right)."""
    from matplotlib.ticker import MaxNLocator

    t = result.timeline
    queue_ax = ax.twinx()
    x, queue = _closed_step(frame.x, bucket_max(t.queue, frame.bucket), frame.x_end)
    queue_ax.fill_between(x, queue, step="post", color=_QUEUE, alpha=0.25, lw=0)
    # An opaque outline keeps a one-bucket spike visible in a week-long plot.
    queue_ax.step(x, queue, where="post", color=_QUEUE, lw=0.9)
    queue_ax.set_ylim(0, queue_top)
    queue_ax.set_ylabel("queue depth", color=_QUEUE)
    queue_ax.tick_params(axis="y", colors=_QUEUE, labelsize=9)
    queue_ax.spines["right"].set_color(_QUEUE)
    queue_ax.spines["top"].set_visible(False)
    # Twin axes are drawn over the original: lift the replica lines above the fill.
    ax.set_zorder(queue_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    _, desired = _closed_step(frame.x, bucket_max(t.desired, frame.bucket), frame.x_end)
    _, ready = _closed_step(frame.x, bucket_max(t.ready, frame.bucket), frame.x_end)
    ax.step(x, desired, where="post", color=_DESIRED, lw=1.4, ls=_DASHED)
    ax.step(x, ready, where="post", color=_READY, lw=1.8)
    ax.set_ylim(0, replicas_top)
    ax.set_ylabel("replicas")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(
        f"{result.name} {routing_words(result.routing)}", loc="left", fontsize=11, fontweight="bold"
    )
    ax.set_title(_key_figures(result), loc="right", fontsize=9.5, color="#333333")
    _style(ax)


def _legend(fig: Figure, *, with_burst: bool) -> None:
    """One legend for all panels, below the time axis (above, it collides with the title)."""
    from matplotlib.colors import to_rgb
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Artist] = [
        Patch(color=_ARRIVALS, label="arrivals per minute"),
        Line2D([], [], color=_DESIRED, lw=1.4, ls=_DASHED, label="desired replicas"),
        Line2D([], [], color=_READY, lw=1.8, label="ready replicas"),
        Patch(facecolor=(*to_rgb(_QUEUE), 0.25), edgecolor=_QUEUE, label="queue depth (right)"),
    ]
    if with_burst:
        handles.append(Line2D([], [], color=_BURST, lw=1, ls=":", label="burst"))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=len(handles),
        frameon=False,
        fontsize=10,
    )


def bucket_seconds(n: int, max_points: int = MAX_POINTS) -> int:
    """The smallest round bucket length (seconds) giving at most ``max_points`` buckets."""
    needed = math.ceil(n / max_points) if n > 0 else 1
    return next((b for b in _ROUND_BUCKETS if b >= needed), needed)


def bucket_max(values: npt.ArrayLike, bucket: int) -> Floats:
    """The maximum of each ``bucket``-long slice of ``values`` (the last may be short)."""
    data = np.asarray(values, dtype=np.float64)
    if bucket == 1 or data.size == 0:
        return data
    padded = np.pad(data, (0, -data.size % bucket), mode="edge")
    result: Floats = padded.reshape(-1, bucket).max(axis=1)
    return result


def arrivals_per_minute(arrivals_per_second: array[int], bucket: int) -> tuple[Floats, Floats]:
    """Arrivals per minute, and each value's start (seconds).

    Counted per whole minute; a last, partial minute is scaled to a per-minute rate.
    When ``bucket`` is longer than a minute, each bucket shows its busiest minute.
    """
    data = np.asarray(arrivals_per_second, dtype=np.float64)
    if data.size == 0:
        return np.zeros(1), np.zeros(1)
    minutes = np.add.reduceat(data, np.arange(0, data.size, 60))
    tail = data.size % 60
    if tail:
        minutes[-1] *= 60 / tail
    per = max(bucket // 60, 1)
    return bucket_max(minutes, per), np.arange(0, data.size, 60 * per, dtype=np.float64)


def _closed_step(x: Floats, y: Floats, x_end: float) -> tuple[Floats, Floats]:
    """``x, y`` with the last value repeated at ``x_end``, so the last step is drawn."""
    if y.size == 0:
        return x, y
    return np.append(x, x_end), np.append(y, y[-1])


def _headroom(top: float) -> float:
    """An axis top 15 % above ``top`` (and at least 1), so lines don't touch the frame."""
    return max(top * 1.15, 1.0)


def _time_unit(n: int) -> tuple[float, str]:
    """Seconds per x-axis unit: minutes up to 3 hours, hours beyond."""
    return (60.0, "minutes") if n <= 3 * 3600 else (3600.0, "hours")


def _label_time_axis(ax: Axes, n: int, unit_name: str, bucket: int) -> None:
    """Label the shared x axis with its unit and the bucket length.

    Hours are ticked at a divisor of a day (every 3 h for a day, 24 h for a week), at
    most ``_MAX_HOUR_TICKS`` of them, because "15 h" is harder to place than "12 h".
    """
    from matplotlib.ticker import MultipleLocator

    label = f"time since start ({unit_name})"
    if bucket > 1:
        label += f"   ·   each point is the maximum over {_duration_words(bucket)}"
    ax.set_xlabel(label, fontsize=10)
    if unit_name == "hours":
        hours = n / 3600
        step = next((h for h in _HOUR_STEPS if hours / h <= _MAX_HOUR_TICKS), None)
        if step is not None:
            ax.xaxis.set_major_locator(MultipleLocator(step))


def _style(ax: Axes) -> None:
    ax.grid(True, axis="both", color="#e6e6e6", lw=0.6)
    ax.set_axisbelow(True)
    ax.spines["top"].set_visible(False)
    ax.tick_params(labelsize=9)


def _key_figures(result: PolicyResult) -> str:
    s = result.summary
    rejected = f"{s.rejected:,}"
    if s.requests:
        rejected += f" ({format_share(s.rejected / s.requests)})"
    return (
        f"signal: {result.signal_name}   p95 wait {format_seconds(s.wait_p95)} s   "
        f"max queue {s.max_queue:,}   rejected {rejected}   "
        f"{s.replica_seconds:,.0f} replica-s"
    )


def _duration_words(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
