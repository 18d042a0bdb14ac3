"""Writing a version's history row and index rows, in as few round trips as the database allows.

On PostgreSQL the history insert, the removal of the old index rows and the insert of the new ones
are data-modifying CTEs of ONE statement whose index rows travel as arrays (`unnest`): one round
trip and one prepared statement whatever the resource, instead of one round trip per table (a
create touches four to seven tables). SQLite runs in-process, where a statement costs microseconds,
so it keeps the plain statements.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import DateTime, Integer, Numeric, TextClause, delete, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.search_rows import index_rows
from storage.tables import SEARCH_TABLES, resource_history
from storage.versions import StoredVersion


def _history_values(pk: int, version: StoredVersion) -> dict[str, Any]:
    return {
        "resource_pk": pk,
        "resource_type": version.resource_type,
        "id": version.id,
        "version_id": version.version_id,
        "last_updated": version.last_updated,
        "method": version.method,
        "deleted": version.deleted,
        "content": version.content,
    }


def _array_type(column: Any) -> str:
    kind = column.type
    if isinstance(kind, Integer) or column.name == "resource_pk":
        return "bigint[]"
    if isinstance(kind, Numeric):
        return "numeric[]"
    if isinstance(kind, DateTime):
        return "timestamptz[]"
    return "text[]"


@cache
def _pg_statement(fresh: bool) -> TextClause:
    ctes = [
        "h AS (INSERT INTO resource_history (resource_pk, resource_type, id, version_id, last_updated, method,"
        " deleted, content) VALUES (:pk, :h_type, :h_id, :h_version, :h_updated, :h_method, :h_deleted, :h_content))"
    ]
    for kind, table in SEARCH_TABLES.items():
        if not fresh:
            ctes.append(f"d_{kind} AS (DELETE FROM {table.name} WHERE resource_pk = :pk)")
        columns = [c for c in table.columns]
        names = ", ".join(c.name for c in columns)
        arrays = ", ".join(f"CAST(:{kind}_{c.name} AS {_array_type(c)})" for c in columns)
        ctes.append(f"i_{kind} AS (INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}))")
    return text("WITH " + ",\n".join(ctes) + "\nSELECT 1")


def _pg_params(pk: int, version: StoredVersion, resource: dict[str, Any] | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "pk": pk,
        "h_type": version.resource_type,
        "h_id": version.id,
        "h_version": version.version_id,
        "h_updated": version.last_updated,
        "h_method": version.method,
        "h_deleted": version.deleted,
        "h_content": version.content,
    }
    rows = index_rows(pk, version.resource_type, resource) if resource is not None else {}
    for kind, table in SEARCH_TABLES.items():
        table_rows = rows.get(kind, [])
        for column in table.columns:
            params[f"{kind}_{column.name}"] = [row.get(column.name) for row in table_rows]
    return params


async def store(
    connection: AsyncConnection,
    pk: int,
    version: StoredVersion,
    resource: dict[str, Any] | None,
    *,
    fresh: bool,
) -> None:
    """History row for `version`; index rows of `resource` (None: a deletion, no rows) replace the old ones."""
    if connection.dialect.name == "postgresql":
        await connection.execute(_pg_statement(fresh), _pg_params(pk, version, resource))
        return
    await connection.execute(insert(resource_history).values(**_history_values(pk, version)))
    if not fresh:
        for table in SEARCH_TABLES.values():
            await connection.execute(delete(table).where(table.c.resource_pk == pk))
    if resource is not None:
        for kind, rows in index_rows(pk, version.resource_type, resource).items():
            if rows:
                await connection.execute(insert(SEARCH_TABLES[kind]), rows)
