"""Shared fixtures: the Prometheus ones live in ``tests/prometheus_fixtures.py``."""

from tests.prometheus_fixtures import (  # noqa: F401
    exporter,
    exporter_namespace,
    http_session,
    scraped_prometheus,
)
