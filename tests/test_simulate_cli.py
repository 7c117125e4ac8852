"""``scaler simulate`` as a user runs it: defaults, outputs, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaler.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["simulate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_default_run_compares_queue_with_cpu_hpa_on_the_burst(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(capsys)
    assert code == 0, err
    assert out.startswith("burst: ")
    lines = out.splitlines()
    assert any(line.startswith("queue ") for line in lines)
    assert any(line.startswith("cpu-hpa ") for line in lines)
    assert "queue vs cpu-hpa: p95 wait" in out
    assert err == ""  # no progress bar when stderr is not a terminal


def test_json_has_stable_keys_and_is_deterministic_for_a_seed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, first, _ = _run(capsys, "--json", "--seed", "7")
    assert code == 0
    _, second, _ = _run(capsys, "--json", "--seed", "7")
    _, other, _ = _run(capsys, "--json", "--seed", "8")
    assert first == second
    assert first != other
    figures = json.loads(first)
    assert (figures["scenario"], figures["seed"]) == ("burst", 7)
    assert list(figures["policies"]) == ["queue", "cpu-hpa"]
    assert list(figures["policies"]["queue"]) == [
        "signal",
        "requests",
        "served",
        "rejected",
        "queue_wait_p50_seconds",
        "queue_wait_p95_seconds",
        "queue_wait_p99_seconds",
        "max_queue",
        "reaction_seconds",
        "replica_seconds",
        "scale_events",
    ]


@pytest.mark.parametrize("scenario", ["burst", "ramp", "spikes"])
def test_every_scenario_runs_with_a_static_policy(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "--scenario", scenario, "--policy", "static:3", "--json")
    assert code == 0
    figures = json.loads(out)["policies"]["static:3"]
    assert figures["requests"] > 0 and figures["scale_events"] == 0


def test_csv_and_plot_are_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path, png = tmp_path / "timeline.csv", tmp_path / "plot.png"
    code, _, err = _run(capsys, "--csv", str(csv_path), "--plot", str(png))
    assert code == 0, err
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("time,arrivals,queue_desired,queue_ready,queue_queue,")
    assert len(lines) == 1 + 35 * 60
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_trace_file_and_a_config_file_are_simulated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("time,rate\n0,0.02\n300,0.3\n600,0.02\n900,0.02\n")
    config = tmp_path / "mine.yaml"
    config.write_text((Path(__file__).parents[1] / "scaler" / "default_config.yaml").read_text())
    code, out, err = _run(capsys, "--trace", str(trace), "--config", str(config), "--json")
    assert code == 0, err
    assert list(json.loads(out)["policies"]) == ["mine", "cpu-hpa"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--scenario", "tsunami"],
            "unknown scenario 'tsunami'",
            id="scenario",
        ),
        pytest.param(
            ["--policy", "fastest"],
            "unknown policy 'fastest'; valid: queue, cpu-hpa, static:N",
            id="policy",
        ),
        pytest.param(["--policy", "static:0"], "N must be a whole number >= 1", id="static"),
        pytest.param(["--policy", "config"], "policy 'config' needs --config FILE", id="cfg"),
        pytest.param(["--parallel", "0"], "--parallel 0 is out of range", id="parallel"),
        pytest.param(
            ["--scenario", "burst", "--trace", "x.csv"],
            "give only one of --scenario, --trace and --from-prometheus",
            id="two-loads",
        ),
    ],
)
def test_usage_errors_exit_2_and_say_what_is_valid(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert message in err
    assert out == ""


def test_unknown_scenario_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = _run(capsys, "--scenario", "tsunami")
    for name in ("burst", "ramp", "diurnal", "spikes"):
        assert name in err


def test_bad_inputs_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path, png = tmp_path / "out.csv", tmp_path / "out.png"
    trace = tmp_path / "trace.csv"
    trace.write_text("time,arrivals\n0,1\n1,abc\n")
    code, _, err = _run(capsys, "--trace", str(trace), "--csv", str(csv_path), "--plot", str(png))
    assert code == 2
    assert "trace.csv:3: column 'arrivals': 'abc' is not a number" in err
    config = tmp_path / "bad.yaml"
    config.write_text(
        (Path(__file__).parents[1] / "scaler" / "default_config.yaml")
        .read_text()
        .replace("type: Percent", "type: Percentage", 1)
    )
    code, _, err = _run(capsys, "--config", str(config), "--csv", str(csv_path))
    assert code == 2
    assert "behavior.scaleUp.policies[0].type: 'Percentage' is not one of Pods, Percent" in err
    code, _, err = _run(capsys, "--csv", str(tmp_path / "missing" / "out.csv"))
    assert code == 2 and "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "trace.csv"]


def test_plot_without_matplotlib_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )
    code, _, err = _run(capsys, "--plot", str(tmp_path / "plot.png"))
    assert code == 2 and "pip install 'scaler[plot]'" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param(
            "series: [ollama_proxy_queue_depth, ollama_proxy_requests_in_flight]",
            "series: [ollama_requests_total]",
            "metric 'queue': its direct read uses series the simulator does not model",
            id="direct",
        ),
        pytest.param(
            "resource: cpu",
            "resource: memory",
            "metric 'cpu': the simulator models CPU only, not 'memory'",
            id="resource",
        ),
    ],
)
def test_a_config_reading_what_the_model_lacks_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, message: str
) -> None:
    default = (Path(__file__).parents[1] / "scaler" / "default_config.yaml").read_text()
    assert old in default
    config = tmp_path / "unmodelled.yaml"
    config.write_text(default.replace(old, new))
    code, out, err = _run(capsys, "--config", str(config))
    assert (code, out) == (2, "")
    assert message in err
