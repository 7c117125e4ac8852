from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaler.cli import main


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "config" in capsys.readouterr().out


def test_config_check_prints_the_effective_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "chatbot/ollama: 2..10 replicas" in out
    assert "scaleDown: window 60s, select Max, tolerance 0.1, policies: 50% per 60s" in out


def test_config_check_of_a_bad_file_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "targets:\n- namespace: a\n  deployment: b\n  maxReplicas: 3\n"
        "  metrics: [{name: q, query: x, target: {type: Value, value: 1}}]\n"
        "  behavior: {scaleUp: {selectPolicy: Fastest}}\n",
        encoding="utf-8",
    )
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "targets[0].behavior.scaleUp.selectPolicy: 'Fastest' is not one of Max, Min" in err


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["config", "check"], 1),
        (["simulate", "--scenario", "burst"], 1),
        (["--help"], 0),  # argparse drops a failed write of its help text itself
        ([], 0),
    ],
)
def test_a_reader_that_leaves_early_gets_no_traceback(command: list[str], code: int) -> None:
    # Issue 13 point 7: `scaler config check FILE | head -3` ended in a BrokenPipeError
    # traceback. The pipe's reading end is closed before scaler starts, so every write
    # fails, whatever the timing.
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "scaler.cli", *command],
            stdout=write,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert done.stderr.decode() == ""
    assert done.returncode == code


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"targets: \xff\n", "not UTF-8 text: byte 0xff at offset 9"),
        (b"a: " + b"[" * 500 + b"]" * 500, "refused: collections nest deeper than 32 levels"),
        (
            b"targets:\n- {namespace: a, deployment: b, maxReplicas: 3, metrics: [{name: q,"
            b" query: x, target: {type: AverageValue, averageValue: .inf}}]}\n",
            "averageValue: Input should be a finite number (got inf)",
        ),
        (
            b"targets:\n- {namespace: a, deployment: b, maxReplicas: 3, metrics: [{name: q,"
            b" query: x, target: {type: AverageValue, averageValue: 0.0004}}]}\n",
            "averageValue 0.0004 is below 1m (0.001)",
        ),
    ],
)
@pytest.mark.parametrize("command", [["config", "check"], ["simulate", "--config"]])
def test_a_config_no_poll_could_use_exits_2_naming_it(
    content: bytes,
    expected: str,
    command: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "scaler.yaml"
    path.write_bytes(content)
    assert main([*command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"scaler: {path}: invalid configuration:\n")
    assert expected in err
    assert "Traceback" not in err
