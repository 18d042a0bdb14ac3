"""Writing a version's history row and index rows, in as few round trips as the database allows.

On PostgreSQL the history insert, the removal of the old index rows and the insert of the new ones
are data-modifying CTEs of ONE statement whose index rows travel as arrays (`unnest`): one round
trip and one prepared statement whatever the resource, instead of one round trip per table (a
create touches four to seven tables). SQLite runs in-process, where a statement costs microseconds,
so it keeps the plain statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, Numeric, TextClause, delete, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.search_rows import index_rows
from storage.tables import SEARCH_TABLES, resource_history
from storage.versions import StoredVersion


@dataclass(frozen=True, slots=True)
class VersionWrite:
    """One new version to record: its history row, and index rows replacing the resource's old ones."""

    pk: int
    version: StoredVersion
    resource: dict[str, Any] | None  # None: a deletion, which leaves no index rows
    fresh: bool  # a new resource: there are no old index rows to remove


_HISTORY_COLUMNS = ("resource_pk", "resource_type", "id", "version_id", "last_updated", "method", "deleted", "content")


def _history_values(write: VersionWrite) -> dict[str, Any]:
    version = write.version
    return {
        "resource_pk": write.pk,
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
    if isinstance(kind, Boolean):
        return "boolean[]"
    return "text[]"


@cache
def _pg_statement() -> TextClause:
    history_arrays = ", ".join(
        f"CAST(:h_{name} AS {_array_type(resource_history.c[name])})" for name in _HISTORY_COLUMNS
    )
    ctes = [
        f"h AS (INSERT INTO resource_history ({', '.join(_HISTORY_COLUMNS)}) SELECT * FROM unnest({history_arrays}))"
    ]
    for kind, table in SEARCH_TABLES.items():
        # Every CTE sees the snapshot from before the statement: the delete cannot touch the new rows.
        ctes.append(f"d_{kind} AS (DELETE FROM {table.name} WHERE resource_pk = ANY(CAST(:stale AS bigint[])))")
        names = ", ".join(c.name for c in table.columns)
        arrays = ", ".join(f"CAST(:{kind}_{c.name} AS {_array_type(c)})" for c in table.columns)
        ctes.append(f"i_{kind} AS (INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}))")
    return text("WITH " + ",\n".join(ctes) + "\nSELECT 1")


def _pg_params(writes: Sequence[VersionWrite]) -> dict[str, Any]:
    histories = [_history_values(w) for w in writes]
    params: dict[str, Any] = {f"h_{name}": [h[name] for h in histories] for name in _HISTORY_COLUMNS}
    params["stale"] = [w.pk for w in writes if not w.fresh]
    table_rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in SEARCH_TABLES}
    for w in writes:
        if w.resource is not None:
            for kind, rows in index_rows(w.pk, w.version.resource_type, w.resource).items():
                table_rows[kind].extend(rows)
    for kind, table in SEARCH_TABLES.items():
        for column in table.columns:
            params[f"{kind}_{column.name}"] = [row.get(column.name) for row in table_rows[kind]]
    return params


async def store_many(connection: AsyncConnection, writes: Sequence[VersionWrite]) -> None:
    """Record several versions (of distinct resources) at once: one statement on PostgreSQL."""
    if not writes:
        return
    if connection.dialect.name == "postgresql":
        await connection.execute(_pg_statement(), _pg_params(writes))
        return
    await connection.execute(insert(resource_history), [_history_values(w) for w in writes])
    stale = [w.pk for w in writes if not w.fresh]
    if stale:
        for table in SEARCH_TABLES.values():
            await connection.execute(delete(table).where(table.c.resource_pk.in_(stale)))
    rows_by_kind: dict[str, list[dict[str, Any]]] = {}
    for w in writes:
        if w.resource is not None:
            for kind, rows in index_rows(w.pk, w.version.resource_type, w.resource).items():
                rows_by_kind.setdefault(kind, []).extend(rows)
    for kind, rows in rows_by_kind.items():
        if rows:
            await connection.execute(insert(SEARCH_TABLES[kind]), rows)


async def store(
    connection: AsyncConnection,
    pk: int,
    version: StoredVersion,
    resource: dict[str, Any] | None,
    *,
    fresh: bool,
) -> None:
    """History row for `version`; index rows of `resource` (None: a deletion, no rows) replace the old ones."""
    await store_many(connection, [VersionWrite(pk, version, resource, fresh)])
