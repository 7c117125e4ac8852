"""``watchScope``: what the Kubernetes caches watch (auto, namespace or cluster); a bad
key or value is refused naming it, as every other top-level key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from scaler.config import DEFAULT_CONFIG_PATH, load, parse_config
from scaler.config.model import WatchScope
from scaler.errors import ConfigError


def _default(**top: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    return {**data, **top}


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def test_auto_by_default_and_each_scope_by_name() -> None:
    assert parse_config(_default()).watch_scope is WatchScope.AUTO
    for scope in ("auto", "namespace", "cluster"):
        assert parse_config(_default(watchScope=scope)).watch_scope.value == scope


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        pytest.param(
            {"watchScope": "clusterwide"},
            "watchScope: 'clusterwide' is not one of auto, namespace, cluster",
            id="bad-value",
        ),
        pytest.param(
            {"watchScope": "Cluster"},
            "watchScope: 'Cluster' is not one of auto, namespace, cluster",
            id="case-matters",
        ),
        pytest.param(
            {"watchScopes": "cluster"},
            "watchScopes: unknown key (did you mean 'watchScope'?)",
            id="bad-key",
        ),
    ],
)
def test_a_bad_watch_scope_names_the_key_and_the_value(top: dict[str, Any], expected: str) -> None:
    assert _problems(_default(**top)) == [expected]


def test_a_long_bad_value_is_quoted_by_a_short_prefix_only() -> None:
    (problem,) = _problems(_default(watchScope="x" * 5000))
    assert problem.startswith("watchScope: 'xxx")
    assert len(problem) < 200


def test_the_file_sets_it(tmp_path: Path) -> None:
    path = tmp_path / "scaler.yaml"
    path.write_text(yaml.safe_dump(_default(watchScope="cluster")), encoding="utf-8")
    assert load(path).watch_scope is WatchScope.CLUSTER
