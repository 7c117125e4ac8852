"""``scaler router`` settings: flags, else ``SCALER_ROUTER_*`` environment variables."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from scaler.config.problems import describe
from scaler.errors import ConfigError
from scaler.proxy.settings import ClientBounds

_URL = r"^https?://[^\s/]+/?$"


class RouterSettings(ClientBounds):
    """Where to listen, where the Ollama pods are, and how many requests each holds."""

    model_config = SettingsConfigDict(env_prefix="SCALER_ROUTER_", extra="forbid", frozen=True)

    host: str = "0.0.0.0"
    port: int = Field(default=11434, ge=0, le=65535, description="Open WebUI points here")
    endpoints: list[str] = Field(
        default_factory=list, description="static pod URLs (http://HOST:PORT), no discovery"
    )
    service: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="the Ollama Service whose EndpointSlices list the pods",
    )
    namespace: str = Field(default="default", min_length=1, max_length=63)
    port_name: str | None = Field(
        default=None, description="the EndpointSlice port to use (default: its only port)"
    )
    kubeconfig: str | None = Field(default=None, description="default: in-cluster")
    management_upstream: str | None = Field(
        default=None,
        pattern=_URL,
        description="where pull/create/copy/delete/push go (the models volume's one writer)",
    )
    parallel: int = Field(default=1, ge=1, le=64, description="slots per pod, NUM_PARALLEL")
    max_queue: int = Field(default=64, ge=0, le=100_000, description="requests waiting")
    retry_after: int = Field(default=5, ge=1, le=3600, description="seconds, sent with a 503")
    no_pod_wait: float = Field(
        default=10.0, ge=0, le=3600, description="seconds a request waits while no pod is ready"
    )
    cold_start_wait: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        description="seconds each request may wait from its arrival while no pod is ready "
        "(scale to zero: held while a pod starts); 0: --no-pod-wait applies",
    )
    drain_timeout: float = Field(
        default=240.0,
        ge=0,
        le=3600,
        description="seconds a stopping router keeps serving the requests it has queued; "
        "then the rest get 503 + Retry-After (below the pod's terminationGracePeriodSeconds, "
        "so no queued client sees its connection reset by the kill)",
    )
    connect_timeout: float = Field(default=5.0, gt=0, le=300, description="seconds to a pod")

    @model_validator(mode="after")
    def _one_discovery(self) -> RouterSettings:
        for url in self.endpoints:
            if not _valid_url(url):
                raise ValueError(f"endpoint {url!r} is not http://HOST:PORT")
        if bool(self.endpoints) == bool(self.service):
            raise ValueError(
                "give either --endpoint URL (one or more) or --service NAME, not "
                + ("both" if self.endpoints else "neither")
            )
        return self


def _valid_url(url: str) -> bool:
    return re.match(_URL, url) is not None


def load_router_settings(**flags: Any) -> RouterSettings:
    """Flags that were given win over the environment; errors name key and value."""
    given: dict[str, Any] = {k: v for k, v in flags.items() if v is not None and v != []}
    try:
        return RouterSettings(**given)
    except ValidationError as error:
        raise ConfigError(
            describe(error, RouterSettings.model_fields), source="scaler router"
        ) from error
