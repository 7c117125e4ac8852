"""The one way a configuration is loaded: ``scaler run``, ``scaler config check`` and
``scaler simulate --config`` all call ``load`` (or ``explain``), so a check approves
exactly what the controller will run.

Order: a path given on the command line, else ``$SCALER_CONFIG``, else the built-in
default (the mission's Ollama target); then each ``SCALER_*`` override replaces the
file's top-level key; then the whole is validated once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic.alias_generators import to_camel

from scaler.config.environment import from_environ, overridden_keys
from scaler.config.model import DEFAULT_CONFIG_PATH, ScalerConfig, parse_config
from scaler.config.yaml_file import read_yaml

FROM_FILE = "file"
FROM_DEFAULT = "default"


@dataclass(frozen=True)
class Explained:
    """A loaded configuration and where each of its top-level values came from."""

    config: ScalerConfig
    path: Path
    path_from: str
    """``argument``, ``SCALER_CONFIG`` or ``built-in default``."""
    origins: Mapping[str, str]
    """Top-level key → ``file``, ``default`` or the variable that set it."""


def load(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> ScalerConfig:
    """The configuration in force; ConfigError naming each bad key, value and where it
    came from. ``environ`` is the process environment at the edge (the CLI); None
    reads the file alone."""
    return explain(path, environ).config


def explain(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Explained:
    """``load``, keeping where each top-level value came from (``config check``)."""
    env = from_environ(environ or {})
    if path is not None:
        source, path_from = Path(path), "argument"
    elif env.config is not None:
        source, path_from = env.config, "SCALER_CONFIG"
    else:
        source, path_from = DEFAULT_CONFIG_PATH, "built-in default"
    data = read_yaml(source)
    origins = {to_camel(field): FROM_DEFAULT for field in ScalerConfig.model_fields}
    origins.update({key: FROM_FILE for key in data if key in origins})
    overrides = overridden_keys(env)
    for key, (variable, value) in overrides.items():
        data[key] = value
        origins[key] = variable
    where = str(source)
    if overrides:
        where = f"{source} with {', '.join(variable for variable, _ in overrides.values())}"
    return Explained(parse_config(data, source=where), source, path_from, origins)
