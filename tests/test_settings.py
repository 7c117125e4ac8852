"""``scaler run``'s settings: the file, then SCALER_* environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler.config import DEFAULT_CONFIG_PATH, Mode
from scaler.errors import ConfigError
from scaler.settings import load_settings


def test_the_built_in_default_is_the_mission_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCALER_CONFIG", raising=False)
    config = load_settings()
    assert [t.key for t in config.targets] == ["chatbot/ollama"]
    assert (config.poll_interval, config.mode, config.timeout) == (2.0, Mode.ACTIVE, 1.6)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "scaler.yaml"
    path.write_text(DEFAULT_CONFIG_PATH.read_text())
    monkeypatch.setenv("SCALER_CONFIG", str(path))
    monkeypatch.setenv("SCALER_MODE", "shadow")
    monkeypatch.setenv("SCALER_POLL_INTERVAL", "1")
    monkeypatch.setenv("SCALER_PROMETHEUS_URL", "http://prometheus.monitoring:9090")
    config = load_settings()
    assert config.mode is Mode.SHADOW
    assert config.poll_interval == 1.0
    assert config.timeout == pytest.approx(0.8)
    assert config.prometheus_url == "http://prometheus.monitoring:9090"


def test_a_bad_override_names_the_variable_key_and_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SCALER_CONFIG", raising=False)
    monkeypatch.setenv("SCALER_MODE", "dry-run")
    monkeypatch.setenv("SCALER_POLL_INTERVAL", "0.1")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "with SCALER_POLL_INTERVAL, SCALER_MODE" in message
    assert "mode: 'dry-run' is not one of active, shadow" in message
    assert "pollInterval: Input should be greater than or equal to 0.5 (got '0.1')" in message


def test_a_query_timeout_must_be_shorter_than_the_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCALER_CONFIG", raising=False)
    monkeypatch.setenv("SCALER_QUERY_TIMEOUT", "2.5")
    with pytest.raises(ConfigError, match=r"queryTimeout 2\.5 must be shorter than the poll"):
        load_settings()


def test_an_explicit_path_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALER_CONFIG", str(tmp_path / "absent.yaml"))
    assert load_settings(DEFAULT_CONFIG_PATH).targets[0].deployment == "ollama"
    with pytest.raises(ConfigError, match=r"absent\.yaml: invalid configuration:\n  cannot read"):
        load_settings()


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", "301"])
def test_a_poll_interval_the_loop_cannot_keep_is_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 13 point 2: SCALER_POLL_INTERVAL=inf validated, and no poll followed the first.
    monkeypatch.delenv("SCALER_CONFIG", raising=False)
    monkeypatch.setenv("SCALER_POLL_INTERVAL", value)
    with pytest.raises(ConfigError, match=r"with SCALER_POLL_INTERVAL") as caught:
        load_settings()
    (problem,) = caught.value.problems
    assert problem.startswith("pollInterval: Input should be")
