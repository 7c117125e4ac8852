"""scaler's own exceptions.

Lower-level errors (pydantic, YAML, HTTP clients) are chained as ``__cause__`` with
``raise ... from``, so callers catch these types and never a library's.
"""

from __future__ import annotations

import reprlib


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


QUOTE_LIMIT = 80
"""Characters of a bad value an error message quotes: a 50 MB string must not
become a 50 MB message."""


def quote(value: object) -> str:
    """``repr(value)``, cut to a short prefix that says how long the whole was.

    Containers are shown a few items deep (``reprlib``), so even a billion-laughs
    structure costs a bounded amount of text to name.
    """
    if isinstance(value, str | bytes) and len(value) > QUOTE_LIMIT:
        size = len(value.encode("utf-8", "replace")) if isinstance(value, str) else len(value)
        return f"{value[:QUOTE_LIMIT]!r}…({size} bytes)"
    text = _SHORT_REPR.repr(value)
    if len(text) > QUOTE_LIMIT:
        return f"{text[:QUOTE_LIMIT]}…"
    return text


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxlevel = 2
    short.maxstring = QUOTE_LIMIT
    short.maxother = QUOTE_LIMIT
    for name in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque"):
        setattr(short, name, 4)
    return short


_SHORT_REPR = _short_repr()
