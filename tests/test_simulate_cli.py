"""``scaler simulate`` as a user runs it: defaults, outputs, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scaler.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["simulate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_default_run_compares_our_stack_with_the_seeds_on_the_burst(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(capsys)
    assert code == 0, err
    assert out.startswith("burst: ")
    lines = out.splitlines()
    assert lines[1].split()[:2] == ["policy", "routing"]
    assert any(line.split()[:2] == ["queue", "shared"] for line in lines)
    assert any(line.split()[:2] == ["cpu-hpa", "random"] for line in lines)
    # The last line: the seed's stack against ours, as ratios, in words.
    last = re.fullmatch(
        r"our stack \(queue behind the router's shared queue\) vs the seed's "
        r"\(cpu-hpa behind random routing\): "
        r"p95 wait ([\d.,]+) s vs ([\d.,]+) s \(([\d.,]+)x lower\), "
        r"rejected \d+ vs \d+, at ([\d.]+)x the replica-seconds",
        lines[-1],
    )
    assert last is not None, lines[-1]
    ours, seeds, lower, replica_seconds = (float(g.replace(",", "")) for g in last.groups())
    assert lower == pytest.approx(seeds / ours, rel=0.1) and lower >= 10
    assert 1.0 <= replica_seconds <= 1.15
    assert err == ""  # no progress bar when stderr is not a terminal


def _policies(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, dict[str, object]]:
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    policies: dict[str, dict[str, object]] = json.loads(out)["policies"]
    return policies


def test_each_stack_has_its_routing_unless_one_is_given_for_all(
    capsys: pytest.CaptureFixture[str],
) -> None:
    default = _policies(capsys, "--policy", "queue", "--policy", "cpu-hpa", "--policy", "static:3")
    assert {name: p["routing"] for name, p in default.items()} == {
        "queue": "shared",
        "cpu-hpa": "random",
        "static:3": "shared",
    }
    for routing in ("least", "random", "shared"):
        every = _policies(capsys, "--routing", routing, "--policy", "queue", "--policy", "cpu-hpa")
        assert [p["routing"] for p in every.values()] == [routing, routing]


def test_name_at_routing_overrides_one_policy_and_stays_in_its_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    policies = _policies(
        capsys, "--routing", "least", "--policy", "cpu-hpa", "--policy", "cpu-hpa@shared"
    )
    assert {name: p["routing"] for name, p in policies.items()} == {
        "cpu-hpa": "least",
        "cpu-hpa@shared": "shared",
    }
    # Same arrivals, same policy: only where requests wait differs.
    assert policies["cpu-hpa"]["requests"] == policies["cpu-hpa@shared"]["requests"]
    assert policies["cpu-hpa"] != policies["cpu-hpa@shared"]


def test_max_queue_is_the_routers_total_and_the_proxies_per_pod_bound(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, "--json")
    figures = json.loads(out)
    assert (code, figures["max_queue"], figures["router_max_queue"]) == (0, 16, 64)
    code, out, _ = _run(capsys, "--json", "--max-queue", "2")
    figures = json.loads(out)
    assert (code, figures["max_queue"], figures["router_max_queue"]) == (0, 2, 2)
    # The burst overflows a router queue of 2 behind the queue policy too.
    assert figures["policies"]["queue"]["rejected"] > 0


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
        "routing",
        "requests",
        "served",
        "rejected",
        "queue_wait_mean_seconds",
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
    argv = ["--trace", str(trace), "--config", str(config), "--policy", "config@least", "--json"]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    assert {n: p["routing"] for n, p in json.loads(out)["policies"].items()} == {
        "mine@least": "least"
    }


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
        pytest.param(["--max-queue", "-1"], "--max-queue -1 is out of range", id="max-queue"),
        pytest.param(
            ["--policy", "cpu-hpa@fastest"],
            "policy 'cpu-hpa@fastest': unknown routing 'fastest'; valid: shared, least, random",
            id="routing-suffix",
        ),
        pytest.param(
            ["--policy", "queue", "--policy", "queue@shared", "--policy", "queue"],
            "a policy is named twice",
            id="twice",
        ),
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


def test_an_unknown_routing_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--routing", "fastest"])
    assert exit_.value.code == 2
    assert "invalid choice: 'fastest'" in capsys.readouterr().err


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


# Whichever series the default config's direct read sums (the proxies' or the routers').
_DIRECT_SERIES = r"series: \[[^\]]*\]"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param(
            _DIRECT_SERIES,
            "series: [ollama_requests_total]",
            "metric 'queue': its direct read uses series the simulator does not model",
            id="direct",
        ),
        pytest.param(
            r"resource: cpu",
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
    assert re.search(old, default)
    config = tmp_path / "unmodelled.yaml"
    config.write_text(re.sub(old, new, default, count=1))
    code, out, err = _run(capsys, "--config", str(config))
    assert (code, out) == (2, "")
    assert message in err
