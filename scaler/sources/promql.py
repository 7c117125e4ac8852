"""A small PromQL tokenizer: enough to find label matchers and ``sum`` aggregations.

Not a parser: it splits a query into tokens with their offsets, so a rewrite can edit
the original text in place (comments, spacing and everything it does not understand
stay as written). Strings are single tokens, whatever braces or quotes they hold, and
a ``[...]`` range is one token, so the colon of a subquery is seen there. Anything it
cannot tokenize raises ``Unsupported``: the caller then reads the query as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from scaler.errors import ScalerError

Kind = Literal["string", "number", "ident", "range", "punct"]


class Unsupported(ScalerError):
    """The query uses something the grouping cannot rewrite safely; the message says what."""


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its text as written and where it starts and ends."""

    kind: Kind
    text: str
    start: int
    end: int


_PATTERNS: Final = (
    ("space", re.compile(r"\s+")),
    ("comment", re.compile(r"#[^\n]*")),
    ("string", re.compile(r'"(?:[^"\\\n]|\\.)*"' r"|'(?:[^'\\\n]|\\.)*'" r"|`[^`]*`")),
    ("range", re.compile(r"\[[^\[\]\"'`]*\]")),
    # Numbers and durations (5m, 1h30m, 0x1f, 1e3, .5): one token, never a name.
    ("number", re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\w*")),
    ("ident", re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")),
    ("punct", re.compile(r"=~|!~|!=|==|<=|>=|[-+*/%^<>=@(){},]")),
)

_ESCAPES: Final = {
    "\\": "\\",
    '"': '"',
    "'": "'",
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def tokenize(query: str) -> list[Token]:
    """The tokens of ``query``, comments and spaces dropped; ``Unsupported`` at a
    character no PromQL token starts with (an unclosed string, a stray ``]``...)."""
    tokens: list[Token] = []
    at = 0
    while at < len(query):
        for kind, pattern in _PATTERNS:
            match = pattern.match(query, at)
            if match:
                if kind not in ("space", "comment"):
                    tokens.append(Token(kind, match.group(), at, match.end()))  # type: ignore[arg-type]
                at = match.end()
                break
        else:
            raise Unsupported(f"cannot read the query at offset {at}: {query[at : at + 10]!r}")
    return tokens


def string_value(token: Token) -> str:
    """What a string token means: quotes removed, Go escapes (``\\"``, ``\\n``...)
    decoded. Numeric escapes (``\\x41``, ``\\u00e9``) are ``Unsupported``."""
    body = token.text[1:-1]
    if token.text[0] == "`":
        return body
    out: list[str] = []
    escaped = False
    for char in body:
        if escaped:
            if char not in _ESCAPES:
                raise Unsupported(f"a string with the escape \\{char}: {token.text[:40]!r}")
            out.append(_ESCAPES[char])
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)


def quoted(value: str) -> str:
    """``value`` as a double-quoted PromQL string."""
    text = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def closing(tokens: list[Token], opening: int) -> int:
    """The index of the bracket closing the one at ``tokens[opening]``."""
    pairs = {"(": ")", "{": "}"}
    want = pairs[tokens[opening].text]
    depth = 0
    for index in range(opening, len(tokens)):
        text = tokens[index].text
        if tokens[index].kind != "punct":
            continue
        if text in pairs:
            depth += 1
        elif text in (")", "}"):
            depth -= 1
            if depth == 0:
                if text != want:
                    break
                return index
    raise Unsupported(f"an unbalanced {tokens[opening].text!r} at offset {tokens[opening].start}")
