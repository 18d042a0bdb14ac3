"""What the repository hands back: one stored version of a resource."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime


@dataclass(frozen=True)
class StoredVersion:
    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    content: str | None  # the exact JSON served; None for a deletion
    method: str = "GET"

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def last_modified_http(self) -> str:
        return format_datetime(self.last_updated.astimezone(UTC), usegmt=True)

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def fhir_instant(value: datetime) -> str:
    value = utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def after(previous: datetime, candidate: datetime) -> datetime:
    """A version's lastUpdated never goes backwards, whatever the wall clock did."""
    previous = utc(previous)
    return candidate if candidate > previous else previous + timedelta(milliseconds=1)
