"""Write an output file all at once or not at all.

The simulator's files (CSV timeline, PNG plot) take a moment to write; a run interrupted
half-way must not leave a truncated file that looks like a result. So we write to a
hidden temporary file in the target's directory (same file system, so the final
``os.replace`` is an atomic rename) and remove it on any error, Ctrl-C included.

The temporary file is opened with mode ``"x"``: it gets the usual ``0o666 & ~umask``
permissions (``mkstemp`` would make it ``0o600``) and never clobbers another file. A
missing directory raises ``FileNotFoundError`` before anything is created. There is no
``fsync``: the aim is "no partial file after an error", not durability across a crash.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

StrPath = str | os.PathLike[str]


@contextmanager
def atomic_text(path: StrPath) -> Iterator[IO[str]]:
    """A UTF-8 text file (``newline=""``, as the csv module wants) that replaces ``path``
    when the ``with`` block ends without an error."""
    target = Path(path)
    temp = _temp_path(target)
    with _replace_or_remove(temp, target), open(temp, "x", encoding="utf-8", newline="") as f:
        yield f


@contextmanager
def atomic_binary(path: StrPath) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` when the ``with`` block ends without an error."""
    target = Path(path)
    temp = _temp_path(target)
    with _replace_or_remove(temp, target), open(temp, "xb") as f:
        yield f


def _temp_path(target: Path) -> Path:
    """A hidden name beside ``target``, unique per process and call."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def _replace_or_remove(temp: Path, target: Path) -> Iterator[None]:
    """Run the body (which closes ``temp``), then rename ``temp`` over ``target``.

    On any error, in the body or in the rename, ``temp`` is removed and the error
    propagates; ``target`` is left as it was.
    """
    try:
        yield
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
