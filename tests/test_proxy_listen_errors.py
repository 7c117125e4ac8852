"""``scaler proxy`` and ``scaler router`` that cannot listen (issue 13, point 7): a busy
port, a host that does not resolve or is not this machine's, end with one clear line
and exit 2, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.router_process import free_port

NO_UPSTREAM = "http://127.0.0.1:9"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _scaler(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "scaler.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _proxy(host: str, port: int) -> list[str]:
    return ["proxy", "--host", host, "--port", str(port), "--upstream", NO_UPSTREAM]


def _router(host: str, port: int) -> list[str]:
    return ["router", "--host", host, "--port", str(port), "--endpoint", NO_UPSTREAM]


@pytest.mark.parametrize("command", [_proxy, _router], ids=["proxy", "router"])
def test_a_busy_port_is_one_line_and_exit_2(command: object, busy_port: int) -> None:
    assert callable(command)
    done = _scaler(*command("127.0.0.1", busy_port))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"scaler: cannot listen on '127.0.0.1' port {busy_port}: " in done.stderr
    assert "in use" in done.stderr


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        pytest.param("no-such-host.invalid", "not known", id="unknown-name"),
        pytest.param("192.0.2.1", "assign requested address", id="not-this-machine"),
        pytest.param("x" * 5000, "cannot listen on 'xxxx", id="huge"),
    ],
)
def test_a_bad_host_is_one_line_and_exit_2(host: str, reason: str) -> None:
    done = _scaler(*_proxy(host, free_port("127.0.0.1")))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert reason in done.stderr
    assert len(done.stderr) < 300  # quotes a short prefix of a huge value, not all of it


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(["--body-timeout", "inf"], "body_timeout: Input should be less", id="inf"),
        pytest.param(["--header-timeout", "nan"], "header_timeout: Input should be", id="nan"),
        pytest.param(["--idle-timeout", "0"], "idle_timeout: Input should be greater", id="0"),
        pytest.param(["--max-body", "10"], "max_body: Input should be greater", id="tiny"),
        pytest.param(["--max-connections", "-1"], "max_connections: Input should be", id="neg"),
        pytest.param(
            ["--max-body", "4096", "--body-memory", "2048"],
            "body_memory (2048) is below max_body (4096)",
            id="memory-below-body",
        ),
    ],
)
@pytest.mark.parametrize("command", [_proxy, _router], ids=["proxy", "router"])
def test_bad_client_bounds_are_one_line_each_and_exit_2(
    command: object, flags: list[str], message: str
) -> None:
    assert callable(command)
    done = _scaler(*command("127.0.0.1", 0), *flags)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert message in done.stderr
