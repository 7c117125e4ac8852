"""``scaler proxy`` settings: flags, else ``SCALER_PROXY_*`` environment variables."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scaler.config.problems import describe
from scaler.errors import ConfigError
from scaler.serving.connections import ConnectionLimits
from scaler.serving.keepalive import UpstreamKeepalive

DrainQueued = Literal["refuse", "serve"]
"""What a stopping proxy does with its queued requests (drain.py)."""


class ClientBounds(BaseSettings):
    """Bounds on what clients may hold, shared by ``scaler proxy`` and ``scaler router``
    (docs/proxy.md, "Slow clients and floods"): a body's size and time, a head's time,
    an idle connection's time, the number of connections, and how long a request may
    wait on an upstream that was lost without closing its connection."""

    max_body: int = Field(
        default=64 << 20,
        ge=1024,
        le=1 << 30,
        description="bytes an inference request's body may have (read whole before a slot)",
    )
    body_memory: int = Field(
        default=96 << 20,
        ge=1024,
        le=1 << 34,
        description="bytes of inference bodies held at once, all requests together",
    )
    body_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="seconds an inference body may take to arrive"
    )
    header_timeout: float = Field(
        default=10.0, gt=0, le=3600, description="seconds a new connection may take to send a head"
    )
    idle_timeout: float = Field(
        default=75.0,
        gt=0,
        le=86400,
        description="seconds a kept-alive connection may wait for its next request head",
    )
    max_connections: int = Field(
        default=0, ge=0, le=1_000_000, description="client connections; 0: from the fd limit"
    )
    upstream_keepalive: int = Field(
        default=15,
        ge=0,
        le=3600,
        description="whole seconds of silence on an upstream connection before TCP keepalive "
        "probes it (then every third of that, 3 probes: a lost peer fails its requests after "
        "twice this, 30 s); 0: off (serving/keepalive.py)",
    )

    @model_validator(mode="after")
    def _one_body_fits(self) -> Self:
        if self.body_memory < self.max_body:
            raise ValueError(
                f"body_memory ({self.body_memory}) is below max_body ({self.max_body}): "
                "a body of max_body bytes could never be held"
            )
        return self

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(self.header_timeout, self.idle_timeout, self.max_connections)

    def keepalive(self) -> UpstreamKeepalive:
        return UpstreamKeepalive(self.upstream_keepalive)


class ProxySettings(ClientBounds):
    """Where to listen, where Ollama is, and how many requests it may hold."""

    model_config = SettingsConfigDict(env_prefix="SCALER_PROXY_", extra="forbid", frozen=True)

    host: str = "0.0.0.0"
    port: int = Field(default=11434, ge=0, le=65535, description="the Service points here")
    upstream: str = Field(
        default="http://127.0.0.1:11435", pattern=r"^https?://[^\s/]+$", description="Ollama"
    )
    management_upstream: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+$",
        description="where pull/create/copy/delete/push go (the models volume's one writer)",
    )
    parallel: int = Field(default=1, ge=1, le=64, description="OLLAMA_NUM_PARALLEL")
    max_queue: int = Field(default=16, ge=0, le=100_000, description="requests waiting")
    retry_after: int = Field(default=5, ge=1, description="seconds, sent with a 503")
    ready_model: str | None = Field(
        default=None,
        description="ready once this model has been loaded (/api/ps); reloaded when evicted",
    )
    connect_timeout: float = Field(default=5.0, gt=0, description="seconds to reach Ollama")
    reload_after: float = Field(
        default=5.0,
        ge=0,
        description="seconds the pod must be idle before the proxy loads --ready-model again "
        "after another model evicted it (docs/proxy.md, Model residency)",
    )
    residency_check: float = Field(
        default=5.0, gt=0, description="seconds between looks at /api/ps for --ready-model"
    )
    num_thread: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Ollama's CPU threads, set on every native inference request: the "
        "container's CPU limit in whole cores (Ollama counts the host's; threads.py)",
    )
    drain_timeout: float = Field(
        default=110.0,
        ge=0,
        description="seconds a stopping proxy waits for the answers it holds (below the "
        "pod's terminationGracePeriodSeconds, so Ollama still stops before the SIGKILL)",
    )
    drain_queued: DrainQueued = Field(
        default="refuse",
        description="what a stopping proxy does with its queued requests: refuse them at "
        "once with 503 (a router sends them to another pod), or serve them as slots free "
        "up within drain_timeout (no router: the client would show the 503)",
    )


def load_proxy_settings(**flags: Any) -> ProxySettings:
    """Flags that were given win over the environment; errors name key and value."""
    given: dict[str, Any] = {key: value for key, value in flags.items() if value is not None}
    try:
        return ProxySettings(**given)
    except ValidationError as error:
        raise ConfigError(
            describe(error, ProxySettings.model_fields), source="scaler proxy"
        ) from error
