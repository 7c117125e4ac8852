"""Pods no node can take: not capacity, and reported once per change.

A pod the scheduler cannot place (PodScheduled False, reason Unschedulable) stays
Pending: it serves nothing, and asking for more replicas adds only more such pods
until a node has room. The calculator already counts Pending pods as unready, as the
HPA does; the controller exports their number (``scaler_pods_unschedulable``) and logs
when it changes, so an operator sees why the replicas asked for never serve.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from scaler.logs import FIELDS
from scaler.policy import Pod

log = logging.getLogger("scaler.controller")


def unschedulable(pods: Iterable[Pod]) -> list[Pod]:
    """The pods, not being deleted, that no node could take at the last look."""
    return [pod for pod in pods if pod.unschedulable is not None and not pod.deleting]


def report_unschedulable(stuck: list[Pod], *, before: int, target: str) -> int:
    """Log when the count changed from ``before``; return the new count to remember."""
    if len(stuck) == before:
        return before
    fields: dict[str, object] = {"target": target, "unschedulable": len(stuck)}
    if stuck:
        fields["pods"] = sorted(pod.name for pod in stuck)
        log.warning(
            "%d pod(s) cannot be scheduled: %s",
            len(stuck),
            stuck[0].unschedulable,
            extra={FIELDS: fields},
        )
    else:
        log.info("every pod is scheduled again", extra={FIELDS: fields})
    return len(stuck)
