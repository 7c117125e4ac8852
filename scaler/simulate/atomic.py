"""Write the output files all at once or not at all, and never over a special file.

The simulator's files (CSV timeline, PNG plot) take a moment to write; a run interrupted
half-way must not leave a truncated file that looks like a result. So each is written
to a hidden temporary file in the target's directory (same file system, so the final
``os.replace`` is an atomic rename) and removed on any error, Ctrl-C included.

``os.replace`` replaces whatever is at the target: a symlink (not the file it points
to), a FIFO, even a device file when run as root. ``check_output`` refuses those, a
missing or unwritable directory and a directory at the target; ``scaler simulate``
runs it on every output before the simulation starts, and the batch runs it again
just before renaming, in case one appeared during the run.

An ``OutputBatch`` makes several files appear together or not at all: every file is
written to its temporary first; only when all are complete are they renamed, in
order. If a rename fails after another succeeded, the earlier targets are put back as
they were (a hard link, or a copy where links are not supported, keeps each old file
until the batch is done), so an error never costs the user a file they had.

Temporaries are opened with mode ``"x"``: they get the usual ``0o666 & ~umask``
permissions (``mkstemp`` would make them ``0o600``) and never clobber another file. A
missing directory raises ``FileNotFoundError`` before anything is created. There is
no ``fsync``: the aim is "no partial file after an error", not durability across a
crash.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO

from scaler.simulate.types import SimulationError

StrPath = str | os.PathLike[str]

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class OutputError(SimulationError):
    """An output path that must not or cannot be written; the message names it."""


def check_output(path: StrPath, *, what: str) -> None:
    """Raise ``OutputError`` unless ``path`` is absent or a regular file in a writable
    directory. ``what`` (e.g. ``--csv``) starts the message."""
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {target}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {target}: directory {parent} is not writable")
    try:
        mode = target.lstat().st_mode  # lstat: a symlink is refused, not followed
    except FileNotFoundError:
        return
    except OSError as e:
        raise OutputError(f"{what} {target}: cannot check it: {e.strerror or e}") from e
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise OutputError(f"{what} {target}: is {kind}, not a regular file; name a file")


def check_outputs(paths: Mapping[str, StrPath | None]) -> None:
    """``check_output`` for each path given (keyed by what names it); two names for
    one file are refused as well, as the second would silently replace the first."""
    seen: dict[str, tuple[str, StrPath]] = {}
    for what, path in paths.items():
        if path is None:
            continue
        check_output(path, what=what)
        first = seen.setdefault(os.path.realpath(path), (what, path))
        if first[0] != what:
            raise OutputError(f"{first[0]} and {what} both name {first[1]}; give each its own file")


class OutputBatch:
    """Files that replace their targets together when the ``with`` block ends without
    an error; on an error every temporary is removed and no target changes."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target)

    def __enter__(self) -> OutputBatch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self._discard()

    @contextmanager
    def text(self, path: StrPath) -> Iterator[IO[str]]:
        """A UTF-8 text file (``newline=""``, as the csv module wants) for ``path``."""
        temp = _temp_path(Path(path))
        with open(temp, "x", encoding="utf-8", newline="") as f:
            self._staged.append((temp, Path(path)))
            yield f

    @contextmanager
    def binary(self, path: StrPath) -> Iterator[IO[bytes]]:
        """A binary file for ``path``."""
        temp = _temp_path(Path(path))
        with open(temp, "xb") as f:
            self._staged.append((temp, Path(path)))
            yield f

    def commit(self) -> None:
        """Rename every temporary onto its target, or, on an error, none."""
        renamed: list[tuple[Path, Path | None]] = []  # (target, its old file kept)
        try:
            for _, target in self._staged:
                check_output(target, what="output")
            for temp, target in self._staged:
                kept = _keep(target)
                try:
                    os.replace(temp, target)
                except BaseException:
                    _remove(kept)
                    raise
                renamed.append((target, kept))
        except BaseException:
            for target, kept in reversed(renamed):
                _put_back(target, kept)
            raise
        finally:
            for _, kept in renamed:
                _remove(kept)
            self._discard()

    def _discard(self) -> None:
        for temp, _ in self._staged:
            temp.unlink(missing_ok=True)
        self._staged.clear()


@contextmanager
def atomic_text(path: StrPath, batch: OutputBatch | None = None) -> Iterator[IO[str]]:
    """A text file that replaces ``path`` when the block ends without an error, or
    when ``batch`` commits if one is given."""
    with contextlib.ExitStack() as stack:
        owner = batch if batch is not None else stack.enter_context(OutputBatch())
        with owner.text(path) as f:
            yield f


@contextmanager
def atomic_binary(path: StrPath, batch: OutputBatch | None = None) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` as ``atomic_text`` does."""
    with contextlib.ExitStack() as stack:
        owner = batch if batch is not None else stack.enter_context(OutputBatch())
        with owner.binary(path) as f:
            yield f


def _temp_path(target: Path, suffix: str = "tmp") -> Path:
    """A hidden name beside ``target``, unique per process and call."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.{suffix}")


def _keep(target: Path) -> Path | None:
    """A second name for the file at ``target`` (``None`` if there is none), so a
    failed batch can put it back."""
    if not target.exists():
        return None
    kept = _temp_path(target, "old")
    try:
        os.link(target, kept)
    except OSError:  # a file system without hard links
        shutil.copy2(target, kept)
    return kept


def _put_back(target: Path, kept: Path | None) -> None:
    """Undo one rename; best effort, as the batch's own error is what to report."""
    with contextlib.suppress(OSError):
        if kept is None:
            target.unlink()
        else:
            os.replace(kept, target)


def _remove(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)
