"""scripts/chatbot-data: backup and restore of the models, Open WebUI's data and its
database, run for real against a fake kubectl whose `exec` runs the command here with
the containers' paths mapped into a temporary folder (the real tar, python3 and
SQLite; pg_dump and pg_restore are stand-ins that copy a file)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "chatbot-data"

# argv: -n NAMESPACE VERB ...; the folders stand for the containers' paths.
FAKE_KUBECTL = r"""#!PYTHON
import os, re, subprocess, sys
root = os.environ["FAKE_ROOT"]
args = sys.argv[1:]
assert args[:2] == ["-n", "chatbot"], args
args = args[2:]
with open(os.path.join(root, "log"), "a") as log:
    log.write(" ".join(args) + "\n")
paths = {"/models": "models", "/app/backend/data": "webui", "/tmp": "tmp"}
pattern = re.compile(r"(/models|/app/backend/data|/tmp)(?=/|$|\s)")
def mapped(word):
    return pattern.sub(lambda m: os.path.join(root, paths[m.group(1)]), word)
if args[0] == "exec":
    command = args[args.index("--") + 1:]
    sys.exit(subprocess.run([mapped(w) for w in command]).returncode)
if args[:2] == ["get", "deployment"]:
    if args[2] not in os.environ["FAKE_DEPLOYMENTS"].split():
        sys.exit(1)
    if "-o" in args:
        print("3", end="")
"""


def prepare(tmp_path: Path, deployments: str) -> dict[str, str]:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    kubectl = bin_ / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.replace("PYTHON", sys.executable, 1))
    pg = tmp_path / "pg.dump"
    (bin_ / "pg_dump").write_text(f"#!/bin/sh\ncat {pg}\n")
    (bin_ / "pg_restore").write_text(f"#!/bin/sh\ncat >{pg}\n")
    (bin_ / "python3").symlink_to(sys.executable)
    for tool in bin_.iterdir():
        tool.chmod(0o755)
    for folder in ("models/blobs", "models/manifests", "webui/uploads", "tmp"):
        (tmp_path / folder).mkdir(parents=True)
    return {
        "PATH": f"{bin_}:/usr/bin:/bin",
        "FAKE_ROOT": str(tmp_path),
        "FAKE_DEPLOYMENTS": deployments,
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False
    )


def wipe(folder: Path) -> None:
    """A fresh, empty volume."""
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    folder.mkdir()


def log(tmp_path: Path) -> list[str]:
    return (tmp_path / "log").read_text().splitlines()


def test_single_user_backup_then_restore_onto_empty_volumes(tmp_path: Path) -> None:
    env = prepare(tmp_path, "ollama-writer open-webui")
    (tmp_path / "models/blobs/sha256-abc").write_bytes(b"weights")
    (tmp_path / "models/manifests/llama").write_text("{}")
    (tmp_path / "webui/uploads/notes.txt").write_text("a file a user uploaded")
    database = sqlite3.connect(tmp_path / "webui/webui.db")
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("CREATE TABLE chat (title TEXT)")
    database.execute("INSERT INTO chat VALUES ('kept across a re-install')")
    database.commit()  # left open: the last write may still be in the WAL only
    backup = tmp_path / "backup"

    result = run(env, "backup", str(backup))
    assert result.returncode == 0, result.stderr
    database.close()
    with tarfile.open(backup / "open-webui-data.tar") as archive:
        assert "./uploads/notes.txt" in archive.getnames()
        assert not [n for n in archive.getnames() if "webui.db" in n]
    assert not (tmp_path / "tmp/webui.db.backup").exists()

    wipe(tmp_path / "models")
    wipe(tmp_path / "webui")
    (tmp_path / "webui/webui.db-wal").write_text("stale")
    result = run(env, "restore", str(backup))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "models/blobs/sha256-abc").read_bytes() == b"weights"
    assert (tmp_path / "models/manifests/llama").read_text() == "{}"
    assert (tmp_path / "webui/uploads/notes.txt").read_text() == "a file a user uploaded"
    assert not (tmp_path / "webui/webui.db-wal").exists()
    restored = sqlite3.connect(tmp_path / "webui/webui.db")
    assert restored.execute("SELECT title FROM chat").fetchall() == [("kept across a re-install",)]
    restored.close()
    assert log(tmp_path)[-2:] == [
        "rollout restart deployment open-webui",
        "rollout status deployment open-webui",
    ]


def test_multi_user_dumps_postgres_and_restores_it_with_open_webui_stopped(
    tmp_path: Path,
) -> None:
    env = prepare(tmp_path, "ollama-writer open-webui postgres")
    (tmp_path / "pg.dump").write_text("the database")
    backup = tmp_path / "backup"
    assert run(env, "backup", str(backup)).returncode == 0
    assert (backup / "postgres.dump").read_text() == "the database"
    assert not (backup / "webui.db").exists()

    (tmp_path / "pg.dump").write_text("lost")
    result = run(env, "restore", str(backup))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pg.dump").read_text() == "the database"
    lines = log(tmp_path)
    stop = lines.index("scale deployment open-webui --replicas 0")
    assert lines[stop + 1] == "rollout status deployment open-webui"
    assert lines[stop + 2].startswith("exec -i deploy/postgres -- sh -c")
    assert "exec pg_restore" in lines[stop + 2]
    assert lines[stop + 3] == "scale deployment open-webui --replicas 3"


def test_restore_refuses_an_incomplete_backup_before_touching_anything(tmp_path: Path) -> None:
    env = prepare(tmp_path, "ollama-writer open-webui")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup/models.tar").write_bytes(b"")
    result = run(env, "restore", str(tmp_path / "backup"))
    assert result.returncode == 1
    assert "open-webui-data.tar: missing, nothing restored" in result.stderr
    assert not [line for line in log(tmp_path) if line.startswith("exec")]


@pytest.mark.parametrize("args", [[], ["backup"], ["copy", "x"]])
def test_bad_arguments_print_the_usage(args: list[str]) -> None:
    result = run({"PATH": os.environ["PATH"]}, *args)
    assert result.returncode == 2
    assert "usage:" in result.stderr
