"""The benchmarks' report: rows of direct against the server under test, with goals.

rows = timing_rows("latency", {"direct": [...], "proxy": [...]}, limit_ms=1.0)
rows.append(Row("peak RSS (MiB)", None, 52.0, "", "<= 80 MiB", True))
print_table(rows, server="proxy")
"""

from __future__ import annotations

from dataclasses import dataclass


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass
class Row:
    """One measure: direct, through the server under test, the difference, the goal."""

    measure: str
    direct: float | None
    server: float
    added: str
    target: str = ""
    met: bool | None = None


def timing_rows(
    name: str, times: dict[str, list[float]], limit_ms: float, server: str = "proxy"
) -> list[Row]:
    """p50 and p95 of ``times["direct"]`` and ``times[server]`` (seconds), in ms; the
    p50's goal: at most ``limit_ms`` added."""
    rows = []
    for label, q in (("p50", 0.50), ("p95", 0.95)):
        direct, other = pct(times["direct"], q) * 1e3, pct(times[server], q) * 1e3
        row = Row(f"{name} {label} (ms)", direct, other, f"{other - direct:+.2f}")
        if label == "p50":
            row.target, row.met = f"+ <= {limit_ms:g} ms", other - direct <= limit_ms
        rows.append(row)
    return rows


def print_table(rows: list[Row], server: str = "proxy") -> None:
    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.0f}" if value >= 1000 else f"{value:.2f}"

    print(f"\n{'measure':<26}{'direct':>9}{server:>9}{'added':>9}  {'target':<13}met")
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "NO")
        print(
            f"{row.measure:<26}{number(row.direct):>9}{number(row.server):>9}{row.added:>9}  "
            f"{row.target:<13}{met}"
        )
