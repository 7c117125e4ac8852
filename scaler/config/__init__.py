"""Configuration: the YAML file's model (``model``, ``targets``, ``behavior``,
``direct``), its bounds (``bounds``), the bounded YAML reader (``yaml_file``), the
``SCALER_*`` environment overrides (``environment``), error lines (``problems``, shared
with the proxy's and the router's settings), and the one loader (``loader``).
"""

from __future__ import annotations

from scaler.config.loader import Explained, explain, load
from scaler.config.model import (
    DEFAULT_CONFIG_PATH,
    FallbackConfig,
    LeaderElectionConfig,
    Mode,
    ScalerConfig,
    parse_config,
)
from scaler.config.targets import MetricConfig, TargetConfig

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "Explained",
    "FallbackConfig",
    "LeaderElectionConfig",
    "MetricConfig",
    "Mode",
    "ScalerConfig",
    "TargetConfig",
    "explain",
    "load",
    "parse_config",
]
