"""The per-second timeline of a simulation as CSV, for a spreadsheet or pandas.

One row per second of the trace: ``time,arrivals``, then for each policy, in the order
given, ``<p>_desired,<p>_ready,<p>_queue,<p>_signal,<p>_reason``. ``time`` is the
second's start (seconds from the start of the trace); the policy columns are the state
at the end of that second (see ``PolicyTimeline``). ``signal`` keeps 6 significant
digits (a NaN is written ``nan``); ``reason`` is the name of the decision in force.

Speed matters: a 7-day trace is 604,800 rows. Each row is built with a single
``%``-format over ``zip``-ed columns (about 0.6 s for two policies, 2-3x faster than
``csv.writer``). That is only safe because every field is a number except policy and
reason names, which are CSV-quoted once up front.
"""

from __future__ import annotations

import csv
import io
from array import array
from collections.abc import Iterable, Iterator, Sequence

from scaler.simulate.atomic import OutputBatch, StrPath, atomic_text
from scaler.simulate.types import PolicyResult

_FIELDS = ("desired", "ready", "queue", "signal", "reason")


def write_timeline_csv(
    path: StrPath,
    arrivals_per_second: array[int],
    results: Sequence[PolicyResult],
    *,
    batch: OutputBatch | None = None,
) -> None:
    """Write the timeline of every policy to ``path``, replacing it atomically (when
    ``batch`` commits, if one is given).

    Raises ``ValueError`` when a policy's timeline does not have one entry per second
    of ``arrivals_per_second`` or names a reason index it does not define; nothing is
    written then. A missing directory raises ``FileNotFoundError``.
    """
    n = len(arrivals_per_second)
    check_timelines(n, results)
    header = ["time", "arrivals"]
    for result in results:
        header += [f"{result.name}_{field}" for field in _FIELDS]
    row_format = "%d,%d" + ",%d,%d,%d,%.6g,%s" * len(results) + "\r\n"
    with atomic_text(path, batch) as f:
        f.write(_csv_line(header))
        f.writelines(
            map(
                row_format.__mod__,
                zip(range(n), arrivals_per_second, *_columns(results), strict=True),
            )
        )


def _columns(results: Sequence[PolicyResult]) -> Iterator[Iterable[object]]:
    """The five columns of each policy, in header order; reasons as quoted names."""
    for result in results:
        t = result.timeline
        names = [_csv_field(name) for name in t.reason_names]
        yield from (t.desired, t.ready, t.queue, t.signal, map(names.__getitem__, t.reasons))


def check_timelines(seconds: int, results: Sequence[PolicyResult]) -> None:
    """Raise ``ValueError`` unless every timeline has ``seconds`` entries per series and
    only reason indexes it names; the message names the policy and the series."""
    for result in results:
        _check_timeline(result, seconds)


def _check_timeline(result: PolicyResult, n: int) -> None:
    t = result.timeline
    for field in _FIELDS:
        column = t.reasons if field == "reason" else getattr(t, field)
        if len(column) != n:
            raise ValueError(
                f"policy {result.name!r}: timeline {field} has {len(column)} entries, "
                f"expected {n} (one per second of arrivals)"
            )
    if t.reasons and not 0 <= min(t.reasons) <= max(t.reasons) < len(t.reason_names):
        raise ValueError(
            f"policy {result.name!r}: reason index out of range "
            f"(have {len(t.reason_names)} reason names)"
        )


def _csv_line(fields: Sequence[str]) -> str:
    """One CSV record with quoting as ``csv.writer`` does it (``\\r\\n`` line end)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(fields)
    return buffer.getvalue()


def _csv_field(value: str) -> str:
    """``value`` quoted if it needs to be (comma, quote or line break in it)."""
    return _csv_line([value])[:-2]
