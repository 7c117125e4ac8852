"""Tests talk to loopback only. The Kubernetes client and aiohttp honour the
environment's proxy variables, which would send a test's requests elsewhere."""

from __future__ import annotations

import pytest

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


def no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every proxy variable for this test."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
