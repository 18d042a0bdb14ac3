"""What a caller may read of one resource type, streamed by keyset pages on (last_updated, pk).

Every page is one statement with the caller's access rules (storage.access.visible) in it, so a
bulk read never shows more than a search would. The order follows the index every type already
has, (resource_type, last_updated, pk): each page starts where the last one ended, whatever the
number of resources, and memory stays one page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.principal import Principal
from bulk.compartment import of_patients
from fhir_mappings.search import SearchQuery
from storage import access
from storage.search.clauses import Context, clause_condition
from storage.tables import resources, search_reference


@dataclass(frozen=True)
class Position:
    """Where a page ends: the next page starts strictly after it."""

    last_updated: datetime
    pk: int

    def to_json(self) -> list[Any]:
        return [self.last_updated.isoformat(), self.pk]

    @classmethod
    def from_json(cls, value: list[Any] | None) -> Position | None:
        return None if not value else cls(datetime.fromisoformat(value[0]), int(value[1]))


@dataclass(frozen=True)
class Row:
    pk: int
    id: str
    last_updated: datetime
    content: str

    @property
    def position(self) -> Position:
        return Position(self.last_updated, self.pk)


@dataclass(frozen=True)
class Selection:
    """Which resources of one type: changed after `since`, up to `until`, matching one of `filters`
    (`_typeFilter`s, OR-ed), of the patients `patients` selects (ids), if given."""

    resource_type: str
    since: datetime | None = None
    until: datetime | None = None
    filters: Sequence[SearchQuery] = ()
    patients: Select[Any] | list[str] | None = None
    at_least: bool = field(default=False)  # `since` inclusive ($everything) rather than strict ($export)


def visible_patients(principal: Principal) -> Select[Any]:
    """The ids of every current Patient the caller may see (a Patient-level export)."""
    p = resources.alias("export_patients")
    return (
        select(p.c.id)
        .where(p.c.resource_type == "Patient", p.c.deleted.is_(False), *access.visible(principal, "Patient", p))
        .correlate(None)
    )


def group_members(group_pk: int) -> Select[Any]:
    """The ids of the Patients a Group lists as members (Group.member.entity)."""
    r = search_reference
    return (
        select(r.c.target_id)
        .where(r.c.resource_pk == group_pk, r.c.param == "member", r.c.target_type == "Patient")
        .correlate(None)
    )


def page_statement(principal: Principal, selection: Selection, after: Position | None, limit: int) -> Select[Any]:
    r = resources
    resource_type = selection.resource_type
    conditions: list[Any] = [
        r.c.resource_type == resource_type,
        r.c.deleted.is_(False),
        *access.visible(principal, resource_type, r),
    ]
    if selection.since is not None:
        conditions.append(
            r.c.last_updated >= selection.since if selection.at_least else r.c.last_updated > selection.since
        )
    if selection.until is not None:
        conditions.append(r.c.last_updated <= selection.until)
    if selection.filters:
        ctx = Context(principal, datetime.now(UTC))
        conditions.append(
            or_(
                *(
                    and_(*(clause_condition(ctx, clause, r, resource_type) for clause in query.clauses))
                    for query in selection.filters
                )
            )
        )
    if selection.patients is not None:
        conditions.append(of_patients(resource_type, r, selection.patients))
    if after is not None:
        # A row comparison: one range of the (resource_type, last_updated, pk) index on PostgreSQL.
        conditions.append(
            tuple_(r.c.last_updated, r.c.pk)
            > tuple_(
                bindparam(None, after.last_updated, type_=r.c.last_updated.type),
                bindparam(None, after.pk, type_=r.c.pk.type),
            )
        )
    return (
        select(r.c.pk, r.c.id, r.c.last_updated, r.c.content)
        .where(*conditions)
        .order_by(r.c.last_updated, r.c.pk)
        .limit(limit)
    )


async def read_page(
    connection: AsyncConnection, principal: Principal, selection: Selection, after: Position | None, limit: int
) -> list[Row]:
    access.require(principal, selection.resource_type, "r")
    rows = await connection.execute(page_statement(principal, selection, after, limit))
    return [Row(row.pk, row.id, _utc(row.last_updated), row.content) for row in rows]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
