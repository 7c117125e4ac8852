"""Load a recorded or hand-written load trace from CSV.

Format:

- UTF-8 text (a byte-order mark is fine), comma-separated. A header row, then one row
  per interval. Blank lines and lines starting with ``#`` are skipped anywhere.
- ``time``: the interval's start, seconds, >= 0, strictly increasing. Times are used
  as they are: a first row at ``time=300`` means nothing arrives in the first 300 s.
- Exactly one of ``arrivals`` (a whole number of requests in the interval) or ``rate``
  (requests/s over the interval; the count is drawn as Poisson with the seed).
- Optional ``prompt_tokens`` and ``completion_tokens``: mean tokens per request in the
  interval; each request's tokens are drawn around that mean (lognormal). Without the
  column, the scenarios' defaults apply (median 250 prompt, 200 completion tokens).
- Row ``i`` covers ``[time[i], time[i+1])``; the last row is as long as the one before it
  (1 s if it is the only row). Arrivals inside a row are spread uniformly at random
  with the seed, so the same file and seed always give the same trace.

Example (one minute at 1 request/s, then a minute at 0.1 request/s)::

    time,rate,prompt_tokens
    0,1.0,300
    60,0.1,300

A trace may have at most 2,592,000 data rows, cover at most 30 days and offer at most
5,000,000 requests (for a ``rate``, the expected count; ``bounds``), checked before
anything is drawn.

Errors name the file, line, column and value, e.g.
``trace.csv:7: column 'arrivals': 'abc' is not a number``; nothing is returned on
error. A 7-day trace at 1 s resolution (604,800 rows) loads in about a second, two
with both token columns.
"""

from __future__ import annotations

import csv
import os
import random
from _csv import Reader
from array import array
from collections.abc import Callable
from itertools import islice
from operator import mul, sub
from typing import TypeVar

from scaler.simulate.bounds import check_load, show_number
from scaler.simulate.gcpause import gc_paused
from scaler.simulate.sampling import poisson_counts, trace_from_intervals
from scaler.simulate.trace_csv_parse import (
    COLUMNS,
    Columns,
    Header,
    read_columns_checked,
    read_columns_fast,
    read_header,
)
from scaler.simulate.types import Trace, TraceError

__all__ = ["COLUMNS", "load_trace_csv"]

_T = TypeVar("_T")


def load_trace_csv(path: str | os.PathLike[str], *, seed: int, token_spread: float = 1.0) -> Trace:
    """Read the CSV trace at ``path``; raises ``TraceError`` naming the line and value.

    The same file and seed always give the same trace.
    """
    where = os.fspath(path)
    with gc_paused():
        header, fast = _read(where, read_columns_fast)
        if fast is None:
            # A comment, a blank line or a bad value: read again row by row, which
            # skips the first two and names the line of the third.
            header, columns = _read(where, read_columns_checked)
        else:
            columns = fast
        return _generate(columns, header, seed, where=where, token_spread=token_spread)


def _read(where: str, read_columns: Callable[[Reader, Header, str], _T]) -> tuple[Header, _T]:
    try:
        # utf-8-sig: spreadsheets often start their CSV exports with a byte-order mark.
        with open(where, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            try:
                header = read_header(reader, where)
                return header, read_columns(reader, header, where)
            except csv.Error as e:
                raise TraceError(f"{where}:{reader.line_num}: {e}") from e
    except OSError as e:
        raise TraceError(f"{where}: cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise TraceError(f"{where}: not UTF-8 text ({e.reason})") from e


def _generate(
    cols: Columns, header: Header, seed: int, *, where: str, token_spread: float
) -> Trace:
    """Draw the requests of every row (the rows are already validated, the bounds
    are checked here, before anything is drawn)."""
    rng = random.Random(seed)
    times, load = cols.times, cols.load
    n = len(times)
    last_width = times[-1] - times[-2] if n > 1 else 1.0
    widths = array("d", map(sub, islice(times, 1, None), times))
    widths.append(last_width)
    rate = header.load_name == "rate"
    # An overflow to inf is caught by the bound as well.
    offered = sum(map(mul, load, widths)) if rate else sum(load)
    top = load.index(max(load))
    largest = f"{header.load_name} {show_number(load[top])} at {show_number(times[top])} s"
    check_load(times[-1] + last_width, offered, where=where, largest=largest)
    counts = poisson_counts(rng, map(mul, load, widths)) if rate else list(map(int, load))
    return trace_from_intervals(
        os.path.basename(where),
        starts=times,
        widths=widths,
        counts=counts,
        rng=rng,
        duration=times[-1] + last_width,
        prompt_means=cols.prompt if header.prompt >= 0 else None,
        completion_means=cols.completion if header.completion >= 0 else None,
        token_spread=token_spread,
    )
