"""What ``scaler simulate`` prints: a table, comparison lines, and JSON.

The table is for people: one row per policy, waits in seconds at a precision that fits
their size, rejected requests as a count and a share. The JSON is for scripts: keys and
their order are stable (``Summary.as_dict`` documents them), floats are rounded to
``JSON_DECIMALS`` so reruns diff cleanly, and a value that is not a finite number is
``null`` (``NaN`` is not JSON).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scaler.simulate.types import PolicyResult

JSON_DECIMALS = 3
"""Decimals kept in JSON floats: milliseconds for times, plenty for replica-seconds."""

_LEADING_META = ("scenario", "seed", "duration_seconds")
_ROUTING_WORDS = {
    "shared": "behind the router's shared queue",
    "least": "behind least-outstanding routing",
    "random": "behind random routing",
}


@dataclass(frozen=True, slots=True)
class _Column:
    """A table column: a two-line header and how to render one policy's cell."""

    top: str
    bottom: str
    cell: Callable[[PolicyResult], str]
    left: bool = False


def format_table(results: Sequence[PolicyResult]) -> str:
    """A plain-text table, one row per policy, columns aligned; no trailing newline.

    ``reaction`` is the time from the burst to the first scale-up (``-`` if none);
    ``avg replicas`` is replica-seconds over the length of the timeline.
    """
    columns: tuple[_Column, ...] = (
        _Column("policy", "", lambda r: r.name, left=True),
        _Column("routing", "", lambda r: r.routing, left=True),
        _Column("wait mean", "(s)", lambda r: format_seconds(r.summary.wait_mean)),
        _Column("wait p50", "(s)", lambda r: format_seconds(r.summary.wait_p50)),
        _Column("wait p95", "(s)", lambda r: format_seconds(r.summary.wait_p95)),
        _Column("wait p99", "(s)", lambda r: format_seconds(r.summary.wait_p99)),
        _Column("max", "queue", lambda r: f"{r.summary.max_queue:,}"),
        _Column("rejected", "", _rejected_cell),
        _Column("reaction", "(s)", lambda r: _optional_seconds(r.summary.reaction)),
        _Column("replica-", "seconds", lambda r: f"{r.summary.replica_seconds:,.0f}"),
        _Column("avg", "replicas", _average_replicas_cell),
        _Column("scale", "events", lambda r: f"{r.summary.scale_events:,}"),
    )
    if any(r.summary.idle is not None for r in results):  # scale to zero or push
        columns += (_Column("first wait", "after idle p95 (s)", _first_wait_cell),)
    grid = [[c.top for c in columns], [c.bottom for c in columns]]
    grid += [[c.cell(r) for c in columns] for r in results]
    widths = [max(len(row[i]) for row in grid) for i in range(len(columns))]
    grid.insert(2, ["-" * w for w in widths])
    lines = []
    for row in grid:
        cells = [
            cell.ljust(w) if c.left else cell.rjust(w)
            for cell, w, c in zip(row, widths, columns, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def compare(results: Sequence[PolicyResult]) -> str:
    """One line per other policy comparing it with the first (ours); ``""`` if alone.

    For example: ``queue (shared) vs static:4 (shared): p95 wait 0.00 s vs 312 s
    (lower), rejected 0 vs 1,204, at 0.93x the replica-seconds``. Rejections appear
    only when either policy rejected something. Zero denominators are written out
    instead of divided by. When the first policy runs behind the shared queue and
    ``cpu-hpa`` behind random routing, their line compares the two stacks, ours and
    the seed's, in those words, and comes last.
    """
    if len(results) < 2:
        return ""
    ours = results[0]
    stacks = ours.routing == "shared" and not _is_cpu_hpa(ours)
    lines, last = [], []
    for other in results[1:]:
        if stacks and _is_cpu_hpa(other) and other.routing == "random":
            label = (
                f"our stack ({ours.name} {routing_words(ours.routing)}) vs the seed's "
                f"({other.name} {routing_words(other.routing)})"
            )
            last.append(f"{label}: {_figures(ours, other)}")
        else:
            lines.append(f"{_label(ours)} vs {_label(other)}: {_figures(ours, other)}")
    return "\n".join(lines + last)


def to_json(results: Sequence[PolicyResult], *, meta: Mapping[str, Any]) -> str:
    """The run as JSON (indented, no trailing newline).

    Layout: ``scenario``, ``seed``, ``duration_seconds`` first (when in ``meta``), then
    the rest of ``meta`` sorted by key, then ``policies``: ``{name: {"signal": ...,
    "routing": ..., **Summary.as_dict()}}`` in the order of ``results`` (the first is ours). Raises
    ``ValueError`` if ``meta`` has a ``policies`` key or two policies share a name.
    """
    if "policies" in meta:
        raise ValueError("meta must not have a 'policies' key: the policies go there")
    document: dict[str, Any] = {key: meta[key] for key in _LEADING_META if key in meta}
    document.update({key: meta[key] for key in sorted(meta) if key not in document})
    policies: dict[str, Any] = {}
    for result in results:
        if result.name in policies:
            raise ValueError(f"two policies are named {result.name!r}")
        policies[result.name] = {
            "signal": result.signal_name,
            "routing": result.routing,
            **result.summary.as_dict(),
        }
    document["policies"] = policies
    return json.dumps(_jsonable(document), indent=2, ensure_ascii=False, allow_nan=False)


def format_seconds(value: float) -> str:
    """Seconds with precision that shrinks as they grow: 0.04, 12.5, 312, 1,234."""
    if not math.isfinite(value):
        return "-"
    if abs(value) < 10:
        return f"{value:.2f}"
    if abs(value) < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _optional_seconds(value: float | None) -> str:
    return "-" if value is None else format_seconds(value)


def _rejected_cell(result: PolicyResult) -> str:
    s = result.summary
    if s.requests == 0:
        return f"{s.rejected:,}"
    return f"{s.rejected:,} ({format_share(s.rejected / s.requests)})"


def format_share(share: float) -> str:
    """A share (0-1) as a percentage; a non-zero share never shows as 0.0 % or 100.0 %."""
    if 0 < share < 0.001:
        return "<0.1%"
    if 0.999 < share < 1:
        return ">99.9%"
    return f"{share:.1%}"


def _first_wait_cell(result: PolicyResult) -> str:
    idle = result.summary.idle
    return "-" if idle is None or not idle.first_waits else format_seconds(idle.first_wait_p95)


def _average_replicas_cell(result: PolicyResult) -> str:
    seconds = len(result.timeline.desired)
    return "-" if seconds == 0 else f"{result.summary.replica_seconds / seconds:.2f}"


def _figures(ours: PolicyResult, other: PolicyResult) -> str:
    a, b = ours.summary, other.summary
    parts = [
        f"p95 wait {format_seconds(a.wait_p95)} s vs {format_seconds(b.wait_p95)} s "
        f"({_ratio_words(a.wait_p95, b.wait_p95)})"
    ]
    if a.rejected or b.rejected:
        parts.append(f"rejected {a.rejected:,} vs {b.rejected:,}")
    parts.append(_replica_seconds_words(a.replica_seconds, b.replica_seconds, other.name))
    return ", ".join(parts)


def routing_words(routing: str) -> str:
    """Where a policy's requests wait, in words: ``behind the router's shared queue``."""
    return _ROUTING_WORDS.get(routing, f"behind {routing} routing")


def _label(result: PolicyResult) -> str:
    """The policy's name, with its routing unless the name already says it."""
    return result.name if "@" in result.name else f"{result.name} ({result.routing})"


def _is_cpu_hpa(result: PolicyResult) -> bool:
    return result.name.partition("@")[0] == "cpu-hpa"


def _ratio_words(ours: float, other: float) -> str:
    """How ``ours`` compares with ``other``: ``12x lower``, ``lower``, ``same``..."""
    if not (math.isfinite(ours) and math.isfinite(other)):
        return "not comparable"
    low, high = sorted((ours, other))
    direction = "lower" if ours < other else "higher"
    if high - low < 0.005 or (low > 0 and high / low < 1.05):
        return "about the same"
    if low <= 0:
        return direction
    return f"{_times(high / low)} {direction}"


def _replica_seconds_words(ours: float, other: float, other_name: str) -> str:
    if other > 0:
        return f"at {_times(ours / other)} the replica-seconds"
    if ours > 0:
        return f"at {ours:,.0f} replica-seconds where {other_name} used none"
    return "both at zero replica-seconds"


def _times(ratio: float) -> str:
    """A ratio as ``0.93x``, ``3.2x`` or ``120x``: two significant digits at most."""
    if ratio >= 10:
        return f"{ratio:,.0f}x"
    if ratio >= 1:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x"


def _jsonable(value: Any) -> Any:
    """``value`` with floats rounded (non-finite ones as ``None``) and paths as text."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value, JSON_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r}")
