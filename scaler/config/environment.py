"""``SCALER_*`` environment variables over the file's top-level keys.

The file is a ConfigMap in the cluster; the environment overrides its scalar
top-level keys, so one image and one ConfigMap serve several setups.
``SCALER_CONFIG`` names the file when no path is given. The variables are read by
pydantic-settings (the same rules as the proxy's and the router's ``SCALER_*``
settings) from the mapping the caller passes, so a test or a check names its
environment instead of inheriting the process's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_camel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources import EnvSettingsSource

ENV_PREFIX = "SCALER_"


class EnvOverrides(BaseSettings):
    """``SCALER_CONFIG`` names the file; the others override the file's keys. Values
    stay text here: the file's model validates them, so an error reads the same
    whichever way a value came."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    config: Path | None = None
    prometheus_url: str | None = None
    poll_interval: str | None = None
    query_timeout: str | None = None
    staleness: str | None = None
    mode: str | None = None
    metrics_port: str | None = None
    metrics_host: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # the environment comes in as an argument: from_environ


def from_environ(environ: Mapping[str, str]) -> EnvOverrides:
    """The overrides ``environ`` holds, read with pydantic-settings' environment rules
    (prefix, case-insensitive names) from that mapping rather than ``os.environ``."""
    source = _MappingSource(EnvOverrides, environ)
    return EnvOverrides(**source())


def overridden_keys(env: EnvOverrides) -> dict[str, tuple[str, str]]:
    """``{fileKey: (VARIABLE, value)}`` for each override that is set."""
    values: dict[str, Any] = env.model_dump(exclude_none=True, exclude={"config"})
    return {
        to_camel(field): (f"{ENV_PREFIX}{field.upper()}", value) for field, value in values.items()
    }


class _MappingSource(EnvSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._given = dict(environ)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._given.items()}
