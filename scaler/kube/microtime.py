"""``metav1.MicroTime`` on the wire, for the Lease and Event fields that need it."""

from __future__ import annotations

from datetime import UTC, datetime


def micro_time(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits: ``2026-01-01T12:00:00.000000Z``.

    The apiserver decodes MicroTime with that fixed layout. kubernetes-asyncio would send
    ``datetime.isoformat()``, which leaves the fraction out when it is zero, and the
    apiserver would then reject the object; so scaler sends these fields as strings.
    A naive ``moment`` is taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 ``Time`` or ``MicroTime`` from the API (without offset: UTC).

    ``Time`` is ``2026-01-01T12:00:00Z``, ``MicroTime`` has six fractional digits;
    ``datetime.fromisoformat`` reads both, and cuts a longer fraction to microseconds.
    ValueError if ``text`` is neither.
    """
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
