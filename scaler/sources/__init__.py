"""Metric sources, one module each: Prometheus (``prometheus.py``, behind
``MetricSource``) and the exporters read directly (``proxies.py``, with
``resolver.py`` for the routers' name). ``scaler.controller.reading`` makes each
into a per-metric ``Reader``."""
