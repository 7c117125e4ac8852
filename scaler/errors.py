"""scaler's own exceptions.

Lower-level errors (pydantic, YAML, HTTP clients) are chained as ``__cause__`` with
``raise ... from``, so callers catch these types and never a library's.
"""

from __future__ import annotations


class ScalerError(Exception):
    """Base of every error scaler raises on purpose."""


class ConfigError(ScalerError):
    """A configuration that cannot be used; ``problems`` name each key and value."""

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "invalid configuration:\n  " + "\n  ".join(problems))


class UsageError(ScalerError):
    """Bad command-line input (exit code 2)."""
