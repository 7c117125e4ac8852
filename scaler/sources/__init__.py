"""Metric sources: one module per source, all behind ``MetricSource``."""
