"""Search-index rows: written with the resource, in the same transaction, from the R4 definitions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.search_rows import index_rows
from storage.tables import SEARCH_TABLES


async def replace(
    connection: AsyncConnection, pk: int, resource_type: str, resource: dict[str, Any], *, fresh: bool = False
) -> None:
    """Make the index rows of resource `pk` those of `resource` (`fresh`: it has none yet)."""
    if not fresh:
        await remove(connection, pk)
    for kind, rows in index_rows(pk, resource_type, resource).items():
        if rows:
            await connection.execute(insert(SEARCH_TABLES[kind]), rows)


async def remove(connection: AsyncConnection, pk: int) -> None:
    for table in SEARCH_TABLES.values():
        await connection.execute(delete(table).where(table.c.resource_pk == pk))
