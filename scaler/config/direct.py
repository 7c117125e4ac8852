"""The base of every configuration model, and the one model the direct read needs.

``StrictModel`` is what every key of the file goes through: camelCase, unknown keys
refused, frozen, finite numbers only. ``DirectConfig`` says where a metric is read
without Prometheus in between.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from scaler.config.bounds import quantity
from scaler.errors import quote

Quantity = Annotated[float, BeforeValidator(quantity)]
PUSHED_SERIES = {
    "scaler_router_queue_depth": "queued",
    "scaler_router_requests_in_flight": "in_flight",
}
"""The router's /metrics series each field of its queue stream's lines reports: a
stream stands in for a direct read of these only."""
_DNS_LABEL = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


class StrictModel(BaseModel):
    """camelCase keys, unknown keys rejected, values frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,  # inf validates every bound below and then breaks a poll
    )


class DirectConfig(StrictModel):
    """Read the exporters themselves each poll, with the query as the fallback.

    Two sources. Without ``host``: every ready pod of the Deployment, at
    ``http://POD_IP:port`` ``path`` (the pods' proxies). With ``host``: every address
    that name resolves to, at ``http://ADDRESS:port`` ``path`` (the routers, through a
    headless Service, whose DNS name answers with each ready router's IP). The value
    is the sum of ``series`` over all of them: no scrape interval in between. If any
    of them cannot be read, the poll uses the Prometheus ``query`` instead.
    """

    host: str | None = Field(
        default=None, description="a DNS name or IP; default: the Deployment's ready pods"
    )
    port: int = Field(ge=1, le=65535)
    path: str = Field(default="/metrics", pattern=r"^/")
    series: list[str] = Field(min_length=1)
    push: bool = Field(
        default=True,
        description="with host: hold each router's queue stream open and decide at each change",
    )

    @field_validator("host")
    @classmethod
    def _host_is_a_name_or_an_address(cls, host: str | None) -> str | None:
        if host is None or _is_ip(host) or _is_dns_name(host):
            return host
        raise ValueError(
            f"{quote(host)} is neither a DNS name nor an IP address "
            "(e.g. scaler-router-headless.chatbot.svc.cluster.local, without a scheme or port)"
        )

    @property
    def reads(self) -> list[str]:
        """Where each poll reads, in words (``scaler config check``)."""
        if self.host is None:
            source = f"the pods' proxies directly: each ready pod, http://POD_IP:{self.port}"
        else:
            source = (
                f"the routers directly: every address of {self.host}, http://ADDRESS:{self.port}"
            )
        lines = [
            f"reads {source}{self.path}",
            f"sums {' + '.join(self.series)}; if any cannot be read: the query",
        ]
        if self.pushed:
            lines.insert(0, "decides at each queue change the routers push; else polls:")
        return lines

    @property
    def pushed(self) -> bool:
        """Whether the routers' queue stream replaces this read: only routers push,
        and a stream carries only the queue and in-flight series."""
        return self.push and self.host is not None and set(self.series) <= PUSHED_SERIES.keys()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_dns_name(host: str) -> bool:
    """RFC 1123: dot-separated labels of letters, digits and inner hyphens; a
    trailing dot (fully qualified) is allowed."""
    name = host.removesuffix(".")
    return 0 < len(name) <= 253 and all(_DNS_LABEL.fullmatch(p) for p in name.split("."))
