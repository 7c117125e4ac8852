from __future__ import annotations

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
