"""The read seam: one ``Reader`` per metric of a target, with one method.

A reader turns ``now`` (and the serving pods' IPs, for reading their proxies) into a
``MetricReading``. It never raises: a failure is an ``Unavailable`` reading, counted
where it happened. Readers compose: "the exporters directly, else Prometheus" is one
``Fallback`` of two counted paths, built at the edge by ``readers_for``, so the
reconciler reads every metric the same way, whatever it comes from.

- ``seam``: the ``Reader`` and ``ReadPath`` protocols, ``Counted`` and ``Fallback``.
- ``paths``: where a metric is read (Prometheus, the pods' proxies, the routers).
- ``build``: each metric's reader from the configuration; a pushed metric reads its
  routers' streams first (``scaler.controller.push``), then the paths above.
"""

from scaler.controller.reading.build import readers_for
from scaler.controller.reading.seam import Counted, Fallback, MetricLabels, Reader, ReadPath

__all__ = ["Counted", "Fallback", "MetricLabels", "ReadPath", "Reader", "readers_for"]
