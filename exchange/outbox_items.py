"""What one outbox row announces, before it is numbered: (kind, type, id, version), with the time of
the version it announces so that a batch's rows are numbered in the order of its writes."""

from __future__ import annotations

from datetime import datetime

from storage.write_events import WriteEvent

Item = tuple[str, str | None, str | None, int | None]  # kind (handshake | notification | deletion), type, id, version
Timed = tuple[datetime, str, Item]  # (last_updated, id, item)


def timed(kind: str, event: WriteEvent) -> Timed:
    v = event.version
    return v.last_updated, v.id, (kind, v.resource_type, v.id, v.version_id)
