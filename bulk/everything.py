"""Patient/$everything: a patient's record (the Patient and its compartment), keyset-paged.

The types go in a fixed order (Patient first, then the compartment's types alphabetically), each
read by bulk.reader, so a page cursor is (type, last position) and paging stays correct while
CHWs keep uploading. Types the caller may not read are left out, as a search would.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.principal import Principal
from bulk.compartment import compartment_params
from bulk.reader import Position, Row, Selection, read_page
from fhir_mappings.outcomes import Invalid
from storage import access

_CURSOR = re.compile(r"^([0-9]{1,3})\.([0-9]{1,17})\.([0-9]{1,18})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cursor:
    type_index: int
    after: Position | None

    def encode(self) -> str:
        if self.after is None:
            return f"{self.type_index}.0.0"
        micros = (self.after.last_updated - _EPOCH) // timedelta(microseconds=1)
        return f"{self.type_index}.{micros}.{self.after.pk}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if text is None:
            return cls(0, None)
        match = _CURSOR.match(text)
        if match is None:
            raise Invalid("_cursor is not a valid paging cursor")
        index, micros, pk = (int(g) for g in match.groups())
        after = None if pk == 0 else Position(_EPOCH + timedelta(microseconds=micros), pk)
        return cls(index, after)


def record_types(principal: Principal, requested: Sequence[str] = ()) -> list[str]:
    """The types of a patient's record the caller may read, in paging order (`_type` narrows them)."""
    compartment = ["Patient", *sorted(t for t in compartment_params() if t != "Patient")]
    for resource_type in requested:
        if resource_type not in compartment:
            raise Invalid(f"_type names '{resource_type}', which is not in the Patient compartment")
    wanted = [t for t in compartment if not requested or t in requested]
    return [t for t in wanted if access.allowed(principal, t, "r")]


async def everything_page(
    connection: AsyncConnection,
    principal: Principal,
    patients: Select[Any] | list[str],
    types: Sequence[str],
    *,
    since: datetime | None,
    count: int,
    cursor: Cursor,
) -> tuple[list[tuple[str, Row]], Cursor | None]:
    """Up to `count` resources from `cursor` on, and the cursor of the next page (None: the last)."""
    found: list[tuple[str, Row]] = []
    index, after = cursor.type_index, cursor.after
    while index < len(types):
        resource_type = types[index]
        selection = Selection(resource_type, since=since, patients=patients, at_least=True)
        rows = await read_page(connection, principal, selection, after, count - len(found) + 1)
        room = count - len(found)
        found.extend((resource_type, row) for row in rows[:room])
        if len(rows) > room:  # this type goes on past the page
            return found, Cursor(index, rows[room - 1].position if room else after)
        index, after = index + 1, None
        if len(found) == count:
            return found, Cursor(index, None) if index < len(types) else None
    return found, None
