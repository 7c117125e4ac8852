"""Settings for ``scaler run``: the YAML file, then environment overrides.

Built once at the edge (the CLI) and passed down. The file is a ConfigMap in the
cluster; the environment (``SCALER_*``, read by pydantic-settings) overrides its
top-level keys, so one image and one ConfigMap serve several setups.
"""

from __future__ import annotations

from pathlib import Path

from pydantic.alias_generators import to_camel
from pydantic_settings import BaseSettings, SettingsConfigDict

from scaler.config import DEFAULT_CONFIG_PATH, ScalerConfig, parse_config, read_yaml


class EnvOverrides(BaseSettings):
    """``SCALER_CONFIG`` names the file; the others override the file's keys."""

    model_config = SettingsConfigDict(env_prefix="SCALER_", extra="ignore")

    config: Path | None = None
    prometheus_url: str | None = None
    poll_interval: str | None = None
    query_timeout: str | None = None
    staleness: str | None = None
    mode: str | None = None
    metrics_port: str | None = None
    metrics_host: str | None = None


def load_settings(path: Path | str | None = None) -> ScalerConfig:
    """The file (``path``, else ``$SCALER_CONFIG``, else the built-in default) with the
    environment's overrides applied; raises ConfigError naming each bad key and value."""
    env = EnvOverrides()
    source = Path(path) if path is not None else env.config or DEFAULT_CONFIG_PATH
    data = read_yaml(source)
    overridden = env.model_dump(exclude_none=True, exclude={"config"})
    for field, value in overridden.items():
        data[to_camel(field)] = value
    where = str(source)
    if overridden:
        names = ", ".join(f"SCALER_{field.upper()}" for field in overridden)
        where = f"{source} with {names}"
    return parse_config(data, source=where)
