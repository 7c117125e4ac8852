"""``scaler config check`` says what each metric reports and which path a target
without ``behavior`` takes (issue 13, point 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scaler.cli import main

TARGET = {
    "namespace": "ns",
    "deployment": "d",
    "maxReplicas": 10,
    "metrics": [
        {
            "name": "queue",
            "query": "sum(q)",
            "target": {"type": "AverageValue", "averageValue": 1},
        },
        {
            "name": "cpu",
            "type": "Resource",
            "query": "sum by (pod) (rate(c[30s]))",
            "target": {"type": "Utilization", "averageUtilization": 80},
        },
    ],
}


def _check(tmp_path: Path, capsys: pytest.CaptureFixture[str], target: dict[str, object]) -> str:
    path = tmp_path / "scaler.yaml"
    path.write_text(yaml.safe_dump({"targets": [target]}))
    assert main(["config", "check", str(path)]) == 0
    return capsys.readouterr().out


def test_a_target_without_behavior_is_explained_as_the_legacy_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _check(tmp_path, capsys, TARGET)
    assert "no behavior: the HPA's legacy path: scale up to at most max(2 x current, 4)" in out
    assert "scaleUp: window" not in out


def test_an_empty_behavior_is_explained_as_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _check(tmp_path, capsys, TARGET | {"behavior": {}})
    assert "scaleUp: window 0s, select Max, tolerance 0.1, policies: 4 pods per 15s" in out
    assert "legacy" not in out


def test_each_metric_says_what_it_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _check(tmp_path, capsys, TARGET)
    assert "reports averageValue: the total per existing replica" in out
    assert "reports averageUtilization (percent of requests) and averageValue" in out
