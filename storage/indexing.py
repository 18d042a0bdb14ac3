"""Search-index rows: written with the resource, in the same transaction, from the R4 definitions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, literal, select
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
            # one executemany per table: asyncpg sends the rows in one round trip
            await connection.execute(insert(SEARCH_TABLES[kind]), rows)


async def remove(connection: AsyncConnection, pk: int) -> None:
    if connection.dialect.name == "postgresql":
        # one round trip instead of one per table: DELETEs as data-modifying CTEs of one statement
        statement = select(literal(1))
        for kind, table in SEARCH_TABLES.items():
            statement = statement.add_cte(delete(table).where(table.c.resource_pk == pk).cte(f"drop_{kind}"))
        await connection.execute(statement)
        return
    for table in SEARCH_TABLES.values():
        await connection.execute(delete(table).where(table.c.resource_pk == pk))
