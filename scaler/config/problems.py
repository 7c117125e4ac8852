"""One line per validation problem, naming the key and (a short prefix of) the value.

Shared by the configuration file and by the proxy's and the router's settings, so a
bad value reads the same wherever it was given. Bounded: a value is quoted by a short
prefix (``errors.quote``) and at most ``MAX_PROBLEMS`` problems are listed, so a
50 MB string or 20,000 bad targets cannot make a message of the same size.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from scaler.errors import QUOTE_LIMIT, quote

MAX_PROBLEMS = 20
"""Problems an error lists; 20,000 bad targets must not make a 20,000-line message."""
_MAX_SUGGESTED_KEY = 64
"""No key is longer; difflib's cost grows with the length of what it compares."""


def describe(error: ValidationError, known_keys: Collection[str] = ()) -> list[str]:
    """The problems of ``error``, one line each; an unknown key gets the closest of
    ``known_keys`` as a suggestion."""
    items = error.errors(include_url=False)
    problems = [_problem(item, known_keys) for item in items[:MAX_PROBLEMS]]
    if len(items) > MAX_PROBLEMS:
        problems.append(f"… and {len(items) - MAX_PROBLEMS} more problems")
    return problems


def location(loc: tuple[int | str, ...]) -> str:
    """``targets[0].metrics[1].target``: list indexes in brackets, pydantic's internal
    validator names left out."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith(("function-", "tagged-union")):
            continue
        else:
            name = part if len(part) <= QUOTE_LIMIT else quote(part)  # a key can be huge too
            text += f".{name}" if text else name
    return text or "(top level)"


def _problem(item: ErrorDetails, known_keys: Collection[str]) -> str:
    key = location(item["loc"])
    kind = item["type"]
    ctx = item.get("ctx") or {}
    if kind == "enum":
        choices = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"{key}: {quote(item.get('input'))} is not one of {choices}"
    if kind == "extra_forbidden":
        return f"{key}: unknown key{_suggest(item['loc'], known_keys)}"
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "value_error":  # a rule across keys: the message names them
        return f"{key}: {item['msg'].removeprefix('Value error, ')}"
    return f"{key}: {item['msg']} (got {quote(item.get('input'))})"


def _suggest(loc: tuple[int | str, ...], known_keys: Collection[str]) -> str:
    name = str(loc[-1]) if loc else ""
    if len(name) > _MAX_SUGGESTED_KEY:
        return ""
    close = difflib.get_close_matches(name, sorted(known_keys), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
