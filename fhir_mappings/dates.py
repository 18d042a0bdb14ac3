"""FHIR date/dateTime/instant strings to UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_instant_param(value: str) -> datetime:
    """The earliest instant a FHIR date/dateTime/instant denotes, in UTC (no zone means UTC)."""
    value = value.strip().replace(" ", "+")  # '+' in a query string often arrives as a space
    partial = _PARTIAL.match(value)
    if partial:
        year, month, day = partial.groups()
        return datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
