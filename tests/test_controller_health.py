"""Issue 13, points 2 and 7: a controller whose loop cannot poll, or whose decisions
raise every poll, is not healthy; a busy metrics port and a kubeconfig that is not
YAML are one-line errors with exit 2. Time is the rig's fake clock."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from scaler.cli import main
from scaler.config import parse_config
from scaler.controller.app import serving
from scaler.controller.loop import FAILING_POLLS, Controller
from scaler.controller.reading import readers_for
from scaler.controller.service import Service
from scaler.errors import ConfigError, UsageError
from scaler.kube.client import KubeconfigError, load_configuration
from tests.support.fake_kube import FakeKube
from tests.support.loopback import no_env_proxy
from tests.test_config import BASE
from tests.test_controller import Rig, _Broken, _config, _cpu


def _service(rig: Rig, controller: Controller | None = None) -> Service:
    return Service(rig.config, controller or rig.controller, rig.metrics)


async def _answer(handler: Any) -> tuple[int, dict[str, Any]]:
    response: web.Response = await handler(make_mocked_request("GET", "/"))
    assert response.text is not None
    return response.status, json.loads(response.text)


async def test_a_loop_that_completes_no_tick_within_the_window_is_stalled() -> None:
    rig = Rig()
    service = _service(rig)
    rig.source.values.update(queue=0.0, cpu=_cpu(2, 0.1))
    await rig.controller.tick()
    assert await _answer(service.healthz) == (200, {"status": "ok"})
    assert (await _answer(service.readyz))[0] == 200
    # pollInterval 2 s, timeout 1.6 s: a tick may be 10 + 1.6 s away.
    assert service.window == pytest.approx(11.6)
    rig.clock.now += 11.5
    assert service.healthy
    rig.clock.now += 0.2
    assert await _answer(service.healthz) == (
        503,
        {"status": "stalled", "reason": "no poll completed for 12 s"},
    )
    assert (await _answer(service.readyz))[0] == 503
    await rig.controller.tick()
    assert service.healthy


async def test_a_loop_that_never_ticks_is_stalled_after_the_window() -> None:
    rig = Rig()
    service = _service(rig)
    assert (await _answer(service.readyz)) == (503, {"status": "starting"})
    rig.clock.now += service.window + 0.01
    assert (await _answer(service.healthz))[1]["status"] == "stalled"


async def test_a_target_whose_poll_raises_every_time_makes_the_controller_unready() -> None:
    rig = Rig()
    broken = _Broken(
        rig.config.targets[0],
        config=rig.config,
        readers=readers_for(rig.config.targets[0], source=rig.source, metrics=rig.metrics),
        actuator=rig.actuator,
        metrics=rig.metrics,
        is_leader=lambda: True,
    )
    controller = Controller([broken], metrics=rig.metrics, clock=rig.clock, sleep=rig.clock.sleep)
    service = _service(rig, controller)
    for _ in range(FAILING_POLLS - 1):
        await rig.clock.sleep(await controller.tick() - rig.clock.now)
        assert service.healthy  # one bad poll is logged, not yet a verdict
    await controller.tick()
    failing = {"status": "failing", "reason": "the last 3 polls raised for chatbot/ollama"}
    assert await _answer(service.readyz) == (503, failing)
    # liveness stays 200: a restart would not cure a decision that raises on this input,
    # and a crash loop would stop the healthy targets too
    assert await _answer(service.healthz) == (200, {"status": "ok"})


async def test_a_poll_that_succeeds_clears_the_failing_count() -> None:
    rig = Rig()
    controller = rig.controller
    rig.source.values.update(queue=0.0, cpu=_cpu(2, 0.1))
    controller.raised[0] = FAILING_POLLS
    assert controller.failing() == ["chatbot/ollama"]
    await controller.tick()
    assert controller.failing() == []


def test_the_health_window_stays_bounded_at_the_slowest_poll_allowed() -> None:
    rig = Rig(_config(pollInterval=300))
    assert _service(rig).window == pytest.approx(900 + 240)


async def test_a_busy_metrics_port_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_env_proxy(monkeypatch)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = {
            **BASE,
            "metricsHost": "127.0.0.1",
            "metricsPort": port,
            "leaderElection": {"enabled": False},
        }
        async with FakeKube() as kube:
            kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
            with pytest.raises(ConfigError) as caught:
                async with serving(parse_config(data), kubeconfig=kubeconfig):
                    pass  # pragma: no cover (the port is taken)
    (problem,) = caught.value.problems
    assert problem.startswith(
        f"metricsHost, metricsPort: cannot listen on '127.0.0.1' port {port}: "
    )
    assert problem.endswith(": Address already in use")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"clusters: [oops\n", "not valid YAML (while parsing a flow sequence"),
        (b"just a string\n", "kubeconfig"),
        (b"\xff\xfe", "can't decode byte 0xff"),
        (b"a: " + b"[" * 500 + b"]" * 500, "maximum recursion depth exceeded"),
    ],
)
async def test_a_kubeconfig_that_is_not_yaml_is_a_usage_error(
    content: bytes, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(content)
    with pytest.raises(KubeconfigError) as caught:
        await load_configuration(path, environ={})
    assert isinstance(caught.value, UsageError)
    message = str(caught.value)
    assert message.startswith(f"cannot load Kubernetes configuration from kubeconfig {path}: ")
    assert expected in message
    assert "\n" not in message and len(message) < 400


def test_scaler_run_with_a_kubeconfig_that_is_not_yaml_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("scaler.logs.configure", lambda level: None)
    monkeypatch.delenv("SCALER_CONFIG", raising=False)
    path = tmp_path / "kubeconfig"
    path.write_bytes(b"clusters: [oops\n")
    assert main(["run", "--kubeconfig", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"scaler: cannot load Kubernetes configuration from kubeconfig {path}")
    assert err.count("\n") == 1
