"""Which changes a watch reports are worth deciding on at once, between polls.

Pure functions of an object before and after a change (None: it did not exist, or no
longer does), as a watch-fed cache reports them. Two kinds wake a target's decision
(``Controller.wake``): a pod of it turning ready (new capacity: the HPA counts a pod
only once it is ready, ``groupPods``), and its Deployment changed by someone else
(``kubectl scale``, a rollout's new annotations, pause or pin set, the Deployment
deleted or created again). A status update, or our own scale PATCH coming back
through the watch, is not: deciding on it again would change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = Mapping[str, Any] | None


def is_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True and it is not being deleted (the HPA does not
    count a ready pod that is terminating: ``deletionTimestamp`` set)."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp") is not None:
        return False
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def turned_ready(old: Obj, new: Obj) -> bool:
    """``new`` is ready and ``old`` was not (or did not exist)."""
    return is_ready(new) and not is_ready(old)


def changed_by_others(old: Obj, new: Obj, written: int | None) -> bool:
    """The Deployment appeared, went away, or its annotations or ``spec.replicas``
    changed to something other than ``written`` (the replicas of our own last scale
    PATCH, None if we wrote none)."""
    if old is None or new is None:
        return old is not new
    if _annotations(old) != _annotations(new):
        return True
    replicas = _replicas(new)
    return bool(replicas != _replicas(old) and replicas != written)


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _replicas(obj: Mapping[str, Any]) -> Any:
    return (obj.get("spec") or {}).get("replicas")
