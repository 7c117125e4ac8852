"""The drain as deployed: in every build the Ollama container's preStop waits for the
proxy beside it to stop listening, the proxy's drain fits the grace period, and the
preStop command itself, run by bash, waits while something listens and ends once
nothing does."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from tests.test_manifests import BUILDS, Obj, one, scaler_args

PROXY_PORT = "11434"


def _pod(name: str) -> Obj:
    pod: Obj = one(name, "Deployment", "ollama")["spec"]["template"]["spec"]
    return pod


def _container(pod: Obj, name: str) -> Obj:
    (container,) = [c for c in pod["containers"] if c["name"] == name]
    return container


@pytest.mark.parametrize("name", BUILDS)
def test_ollama_stops_only_after_its_proxy_within_the_grace_period(name: str) -> None:
    pod = _pod(name)
    grace = pod["terminationGracePeriodSeconds"]
    pre_stop = _container(pod, "ollama")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[:2] == ["/bin/bash", "-c"]
    assert f"/dev/tcp/127.0.0.1/{PROXY_PORT}" in pre_stop[2]
    proxy = _container(pod, "proxy")
    assert "lifecycle" not in proxy  # its SIGTERM starts the drain at once
    args = scaler_args(proxy)
    assert args.port == int(PROXY_PORT)
    assert args.drain_timeout is not None and args.drain_timeout + 5 <= grace


def test_the_pre_stop_waits_while_the_proxy_listens_and_ends_when_it_stops() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = str(listener.getsockname()[1])
    command = _container(_pod("base"), "ollama")["lifecycle"]["preStop"]["exec"]["command"]
    script = command[2].replace(PROXY_PORT, port)
    hook = subprocess.Popen(["bash", "-c", script])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            hook.wait(2.5)  # the proxy still listens: Ollama's SIGTERM must wait
        listener.close()  # the proxy drained and exited
        started = time.monotonic()
        assert hook.wait(5) == 0
        assert time.monotonic() - started < 3  # within a poll of one second
    finally:
        listener.close()
        if hook.poll() is None:
            hook.kill()
            hook.wait()
