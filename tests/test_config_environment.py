"""The one loader: a path, else ``SCALER_CONFIG``, else the built-in default; then
``SCALER_*`` overrides. ``scaler run``, ``config check`` and ``simulate --config``
all load through it, so a check approves what run runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler.cli import main
from scaler.config import DEFAULT_CONFIG_PATH, Mode, explain, load
from scaler.errors import ConfigError


def test_the_built_in_default_is_the_mission_target() -> None:
    config = load(None, {})
    assert [t.key for t in config.targets] == ["chatbot/ollama"]
    assert (config.poll_interval, config.mode, config.timeout) == (2.0, Mode.ACTIVE, 1.6)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "scaler.yaml"
    path.write_text(DEFAULT_CONFIG_PATH.read_text())
    environ = {
        "SCALER_CONFIG": str(path),
        "SCALER_MODE": "shadow",
        "SCALER_POLL_INTERVAL": "1",
        "SCALER_PROMETHEUS_URL": "http://prometheus.monitoring:9090",
        "HOME": "/root",  # not ours: ignored
    }
    config = load(None, environ)
    assert config.mode is Mode.SHADOW
    assert config.poll_interval == 1.0
    assert config.timeout == pytest.approx(0.8)
    assert config.prometheus_url == "http://prometheus.monitoring:9090"


def test_without_an_environment_the_file_alone_counts() -> None:
    assert load(None, None).mode is Mode.ACTIVE
    assert load(DEFAULT_CONFIG_PATH, {"SCALER_MODE": "shadow"}).mode is Mode.SHADOW


def test_explain_says_where_each_value_came_from(tmp_path: Path) -> None:
    path = tmp_path / "scaler.yaml"
    path.write_text(DEFAULT_CONFIG_PATH.read_text())
    explained = explain(None, {"SCALER_CONFIG": str(path), "SCALER_STALENESS": "20"})
    assert (explained.path, explained.path_from) == (path, "SCALER_CONFIG")
    assert explained.origins["pollInterval"] == "file"
    assert explained.origins["staleness"] == "SCALER_STALENESS"
    assert explained.origins["mode"] == "default"
    assert explained.config.staleness == 20.0


def test_a_bad_override_names_the_variable_key_and_value() -> None:
    with pytest.raises(ConfigError) as caught:
        load(None, {"SCALER_MODE": "dry-run", "SCALER_POLL_INTERVAL": "0.1"})
    message = str(caught.value)
    assert "with SCALER_POLL_INTERVAL, SCALER_MODE" in message
    assert "mode: 'dry-run' is not one of active, shadow" in message
    assert "pollInterval: Input should be greater than or equal to 0.5 (got '0.1')" in message


def test_a_query_timeout_must_be_shorter_than_the_poll() -> None:
    with pytest.raises(ConfigError, match=r"queryTimeout 2\.5 must be shorter than the poll"):
        load(None, {"SCALER_QUERY_TIMEOUT": "2.5"})


def test_an_explicit_path_wins_over_the_environment(tmp_path: Path) -> None:
    environ = {"SCALER_CONFIG": str(tmp_path / "absent.yaml")}
    assert load(DEFAULT_CONFIG_PATH, environ).targets[0].deployment == "ollama"
    with pytest.raises(ConfigError, match=r"absent\.yaml: invalid configuration:\n  cannot read"):
        load(None, environ)


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", "301"])
def test_a_poll_interval_the_loop_cannot_keep_is_refused(value: str) -> None:
    # Issue 13 point 2: SCALER_POLL_INTERVAL=inf validated, and no poll followed the first.
    with pytest.raises(ConfigError, match=r"with SCALER_POLL_INTERVAL") as caught:
        load(None, {"SCALER_POLL_INTERVAL": value})
    (problem,) = caught.value.problems
    assert problem.startswith("pollInterval: Input should be")


def test_config_check_applies_the_environment_as_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 14: `config check` read the file alone while `run` applied SCALER_*, so a
    # check could approve a configuration run would refuse (or run differently).
    path = tmp_path / "scaler.yaml"
    path.write_text(DEFAULT_CONFIG_PATH.read_text())
    monkeypatch.setenv("SCALER_CONFIG", str(path))
    monkeypatch.setenv("SCALER_POLL_INTERVAL", "1")
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert f"{path} (SCALER_CONFIG): valid" in out
    assert "  pollInterval: 1.0 (SCALER_POLL_INTERVAL)" in out
    assert "  staleness: 10.0 (default)" in out
    monkeypatch.setenv("SCALER_POLL_INTERVAL", "inf")
    assert main(["config", "check"]) == 2
    assert "with SCALER_POLL_INTERVAL" in capsys.readouterr().err


def test_simulate_config_applies_the_environment_as_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scaler.yaml"
    path.write_text(DEFAULT_CONFIG_PATH.read_text())
    monkeypatch.setenv("SCALER_QUERY_TIMEOUT", "5")  # longer than the file's 2 s poll
    assert main(["simulate", "--config", str(path)]) == 2
    assert "queryTimeout 5 must be shorter than the poll" in capsys.readouterr().err
