"""What a search hands back per resource: its current stored version, as served."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.tables import resources
from storage.versions import utc

FOUND_COLUMNS = (
    resources.c.pk,
    resources.c.resource_type,
    resources.c.id,
    resources.c.version_id,
    resources.c.last_updated,
    resources.c.content,
)


@dataclass(frozen=True, slots=True)
class Found:
    pk: int
    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    content: str

    @classmethod
    def of(cls, row: Any) -> Found:
        return cls(row.pk, row.resource_type, row.id, row.version_id, utc(row.last_updated), row.content)
