"""Search over the index tables."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.principal import Principal
from storage.tables import resources


async def find_matches(
    connection: AsyncConnection, principal: Principal, resource_type: str, query: list[tuple[str, str]]
) -> list[tuple[int, str]]:
    ids = [v for k, v in query if k == "_id"]
    statement = select(resources.c.pk, resources.c.id).where(
        resources.c.resource_type == resource_type, resources.c.deleted.is_(False), resources.c.id.in_(ids)
    )
    return [(r.pk, r.id) for r in (await connection.execute(statement)).all()]
