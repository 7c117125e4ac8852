"""What a stopping Ollama pod's proxy does with its queue, per stack (docs/proxy.md,
"Drain"): it refuses it at once behind a router, which re-sends each request to
another pod; in `cpu-hpa` (no router: Open WebUI -> Service `ollama` -> a proxy with
its own queue) it serves it, since nobody would re-send a refusal and Open WebUI would
show the 503 as the chat's error.

The proxy's args go through the real `scaler` parser and the proxy's own settings.
"""

from __future__ import annotations

import pytest

from scaler.errors import ConfigError
from scaler.proxy.settings import ProxySettings, load_proxy_settings
from tests.test_manifests import BUILDS
from tests.test_manifests_router import SEED, proxy_args


def proxy_settings(name: str) -> ProxySettings:
    args = proxy_args(name)
    given = {k: v for k, v in vars(args).items() if k not in {"command", "handler", "log_level"}}
    return load_proxy_settings(**given)


@pytest.mark.parametrize("name", BUILDS)
def test_only_the_seeds_stack_serves_its_queue_when_a_pod_stops(name: str) -> None:
    settings = proxy_settings(name)
    assert settings.drain_queued == ("serve" if name == SEED else "refuse")
    assert settings.max_queue == (16 if name == SEED else 0)
    assert settings.drain_timeout == 110  # the queue is served within it, then refused


def test_a_bad_drain_queued_names_the_key_and_the_value() -> None:
    with pytest.raises(ConfigError, match=r"drain_queued: .*'refuse' or 'serve' \(got 'later'\)"):
        load_proxy_settings(drain_queued="later")
