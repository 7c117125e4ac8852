"""Reading a configuration file's YAML within bounds.

A config file is small; a hostile or broken one must not cost the process its
memory or its stack before validation can name what is wrong. So, before anything
is validated:

- the file may hold at most ``MAX_FILE_BYTES`` (1 MiB) and must be UTF-8;
- collections may nest at most ``MAX_DEPTH`` (32) levels (PyYAML's composer
  recurses per level, and 500 levels exhaust Python's stack);
- the document may hold at most ``MAX_NODES`` (100,000) values, *counting every
  alias as the whole of what it names*: a 700-byte "billion laughs" file, nine
  levels of nine aliases, names 9**9 values and is refused here instead of
  expanding into gigabytes in the validator or in an error message;
- an alias may not name a collection that contains it (a recursive structure).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from scaler.errors import ConfigError, quote

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "read_yaml"]

MAX_FILE_BYTES = 1 << 20
"""Bytes a config file may hold (1 MiB): about 5,000 targets of the usual size."""
MAX_DEPTH = 32
"""Levels of nested collections (a config needs 7)."""
MAX_NODES = 100_000
"""Values in the document, aliases counted at their full expanded size."""


class _Refused(yaml.YAMLError):
    """A bound is exceeded; the message says which."""


class BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that counts depth and expanded values while it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._open: set[str] = set()  # anchors of collections being composed
        self._sizes: dict[int, int] = {}  # expanded size of each anchored node, by id

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor  # type: ignore[no-untyped-call]
            if anchor in self._open:
                raise _Refused(f"the alias *{quote(anchor)} names a collection that holds it")
            node = super().compose_node(parent, index)
            if node is not None:
                self._count(self._expanded(node))
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"collections nest deeper than {MAX_DEPTH} levels")
        self._count(1)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    # The stubs type ``anchor`` as a dict; PyYAML passes the anchor's name or None.
    def compose_sequence_node(self, anchor: Any) -> yaml.SequenceNode:
        with self._composing(anchor):
            return super().compose_sequence_node(anchor)

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        with self._composing(anchor):
            return super().compose_mapping_node(anchor)

    @contextmanager
    def _composing(self, anchor: str | None) -> Iterator[None]:
        """Marks ``anchor`` open while its collection is composed: an alias to it
        from inside would make the structure recursive."""
        if anchor is not None:
            self._open.add(anchor)
        try:
            yield
        finally:
            if anchor is not None:
                self._open.discard(anchor)

    def _count(self, nodes: int) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise _Refused(
                f"more than {MAX_NODES:,} values once aliases are expanded "
                "(an alias counts as everything it names)"
            )

    def _expanded(self, node: yaml.Node) -> int:
        """Values ``node`` stands for with every alias inside it expanded; memoized
        per node, so the count costs one visit per distinct node."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._expanded(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._expanded(k) + self._expanded(v) for k, v in node.value)
        self._sizes[id(node)] = size
        return size


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping, within the module's bounds; ConfigError
    naming the file and the bound otherwise."""
    text = _read_text(path)
    try:
        data = yaml.load(text, Loader=BoundedLoader)  # BoundedLoader is a SafeLoader
    except _Refused as error:
        raise ConfigError([f"refused: {error}"], source=str(path)) from error
    except yaml.YAMLError as error:
        raise ConfigError([f"not valid YAML: {_first_lines(error)}"], source=str(path)) from error
    except ValueError as error:  # a scalar PyYAML cannot convert: 5,000 digits, 2001-13-45
        problem = f"a value YAML cannot read: {_first_lines(error)}"
        raise ConfigError([problem], source=str(path)) from error
    if not isinstance(data, dict):
        got = type(data).__name__
        raise ConfigError([f"the file must hold a mapping, not {got}"], source=str(path))
    return data


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError([f"cannot read the file: {error.strerror}"], source=str(path)) from error
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(
            [f"refused: larger than {MAX_FILE_BYTES:,} bytes (1 MiB)"], source=str(path)
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = raw[error.start : error.start + 1].hex()
        raise ConfigError(
            [f"not UTF-8 text: byte 0x{byte} at offset {error.start}"], source=str(path)
        ) from error


def _first_lines(error: Exception, limit: int = 400) -> str:
    """PyYAML's message, bounded (it quotes a snippet of the offending line)."""
    text = str(error)
    return text if len(text) <= limit else text[:limit] + "…"
