"""Where ``scaler simulate`` may write (issue 13, point 1): never over a special file,
checked before the run, and ``--csv`` with ``--plot`` written both or neither.

Every special file is made inside the test's own ``tmp_path``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scaler.cli import main
from scaler.simulate import atomic, command
from scaler.simulate.atomic import OutputBatch, OutputError, check_output

FAST = ("--policy", "static:1", "--json")
"""One static policy on the default 35-minute scenario: well under a second."""


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the simulation starts: the check must come first."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the simulation ran before the outputs were checked")

    monkeypatch.setattr(command, "simulate", refuse)


def _simulate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["simulate", *FAST, *argv])
    return code, capsys.readouterr().err


def _special(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / kind
    if kind == "symlink":
        (tmp_path / "target.txt").write_text("keep me")
        path.symlink_to(tmp_path / "target.txt")
    elif kind == "dangling-symlink":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    return path


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("symlink", "is a symbolic link"),
        ("dangling-symlink", "is a symbolic link"),
        ("fifo", "is a FIFO"),
        ("directory", "is a directory"),
    ],
)
@pytest.mark.parametrize("flag", ["--csv", "--plot"])
@pytest.mark.usefixtures("no_run")
def test_a_special_file_at_an_output_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, words: str, flag: str
) -> None:
    path = _special(tmp_path, kind)
    before = {p.name: os.lstat(p).st_mode for p in tmp_path.iterdir()}
    code, err = _simulate(capsys, flag, str(path))
    assert code == 2
    assert err == f"scaler: {flag} {path}: {words}, not a regular file; name a file\n"
    assert {p.name: os.lstat(p).st_mode for p in tmp_path.iterdir()} == before
    if kind == "symlink":
        assert (tmp_path / "target.txt").read_text() == "keep me"


@pytest.mark.usefixtures("no_run")
def test_a_missing_directory_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing" / "out.png"
    code, err = _simulate(capsys, "--plot", str(path))
    assert code == 2
    assert err == f"scaler: --plot {path}: directory {path.parent} does not exist\n"
    (tmp_path / "file").write_text("")
    code, err = _simulate(capsys, "--csv", str(tmp_path / "file" / "out.csv"))
    assert code == 2 and "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_an_unwritable_directory_is_refused_by_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unwritable directory is refused before the run. The tests run as root (as CI
    does), for whom every directory is writable, so ``os.access`` (which the check asks,
    and which answers for the user running it) says "not writable" for this one."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        atomic.os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode)
    )
    with pytest.raises(OutputError, match=r"^--csv .*: directory .*locked is not writable$"):
        check_output(locked / "out.csv", what="--csv")


@pytest.mark.usefixtures("no_run")
def test_with_csv_and_plot_one_bad_output_writes_neither(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "timeline.csv"
    code, err = _simulate(capsys, "--csv", str(good), "--plot", str(_special(tmp_path, "fifo")))
    assert code == 2 and "--plot" in err
    assert not good.exists()


@pytest.mark.usefixtures("no_run")
def test_csv_and_plot_at_one_path_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out"
    code, err = _simulate(capsys, "--csv", str(path), "--plot", str(tmp_path / "." / "out"))
    assert code == 2
    assert err == f"scaler: --csv and --plot both name {path}; give each its own file\n"


def test_a_plot_that_fails_leaves_the_csv_unwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import scaler.simulate.plot as plot

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plot, "write_plot", crash)
    old = tmp_path / "timeline.csv"
    old.write_text("the user's old timeline")
    code, err = _simulate(capsys, "--csv", str(old), "--plot", str(tmp_path / "p.png"))
    assert code == 1
    assert err.startswith("scaler: cannot write the outputs, none was written: ")
    assert "No space left on device" in err
    assert old.read_text() == "the user's old timeline"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["timeline.csv"]


def test_a_rename_that_fails_after_another_puts_the_first_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = tmp_path / "a.csv", tmp_path / "b.png", tmp_path / "c.txt"
    first.write_text("old a")
    real_replace = os.replace

    def replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        if Path(target) == third:
            raise PermissionError(13, "Permission denied")
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(PermissionError), OutputBatch() as batch:
        for path in (first, second, third):
            with batch.text(path) as f:
                f.write("new")
    assert first.read_text() == "old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_a_special_file_that_appears_during_the_run_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with pytest.raises(OutputError, match="is a FIFO"), OutputBatch() as batch:
        with batch.text(path) as f:
            f.write("new")
        os.mkfifo(path)  # between the check before the run and the rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert not path.is_file()


def test_a_batch_writes_every_file_at_the_end(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.png"
    second.write_bytes(b"old")
    with OutputBatch() as batch:
        with batch.text(first) as f:
            f.write("a")
        with batch.binary(second) as b:
            b.write(b"b")
        assert not first.exists() and second.read_bytes() == b"old"
    assert first.read_text() == "a" and second.read_bytes() == b"b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.png"]
