"""SQLite's write of new resources: prebuilt statements, in one trip to the connection's thread.

A create on SQLite made a dozen SQLAlchemy statements (the resource, its history row, one insert
per kind of index row), each compiled from its cache key and each a trip through the event loop
to aiosqlite's thread, all while the writer held the process's write turn (storage.database). Here
the SQL of each insert is built once from the table definitions, the values are converted by the
same SQLAlchemy type processors the plain statements use (so the rows stored are identical; see
tests/storage/test_version_writes_twins.py), and one function runs every insert of the batch in the
thread, in the transaction SQLAlchemy opened on that connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.pooled import raw_connection
from storage.search_rows import index_rows
from storage.sqlite_sql import DIALECT, Processor, converted
from storage.tables import SEARCH_TABLES, resource_history, resources
from storage.versions import StoredVersion


@dataclass(frozen=True, slots=True)
class _Insert:
    """One table's prebuilt INSERT: its SQL, its columns in order (with the pk left out) and the
    SQLAlchemy bind processor of each (None where the value goes to sqlite3 as it is)."""

    sql: str
    columns: tuple[str, ...]
    processors: tuple[Processor, ...]

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return converted((row.get(c) for c in self.columns), self.processors)


def _prebuilt(table: Table, suffix: str = "") -> _Insert:
    columns = tuple(c.name for c in table.columns if c.name != "pk")
    processors = tuple(table.c[name].type.dialect_impl(DIALECT).bind_processor(DIALECT) for name in columns)
    names = ", ".join(f'"{name}"' for name in columns)
    marks = ", ".join("?" for _ in columns)
    return _Insert(f"INSERT INTO {table.name} ({names}) VALUES ({marks}){suffix}", columns, processors)


@cache
def _statements() -> tuple[_Insert, _Insert, dict[str, _Insert]]:
    resource = _prebuilt(resources, " ON CONFLICT (resource_type, id) DO NOTHING RETURNING pk")
    return resource, _prebuilt(resource_history), {kind: _prebuilt(t) for kind, t in SEARCH_TABLES.items()}


@dataclass(slots=True)
class _New:
    """A new resource ready for the thread: its three kinds of rows as tuples, the pk left to fill."""

    resource: tuple[Any, ...]
    history: tuple[Any, ...]
    index: list[tuple[str, list[tuple[Any, ...]]]]


def _insert_all(connection: sqlite3.Connection, batch: list[_New]) -> list[int | None]:
    """In the connection's thread: each resource, then (when its id was free) its history and index
    rows with the pk it got. `resource_pk` is the first column of history and index rows alike."""
    resource_sql, history_sql, index_sql = _sql()
    pks: list[int | None] = []
    for new in batch:
        row = connection.execute(resource_sql, new.resource).fetchone()
        if row is None:  # the id is taken: nothing else is written for it
            pks.append(None)
            continue
        pk = row[0]
        pks.append(pk)
        connection.execute(history_sql, (pk, *new.history[1:]))
        for kind, rows in new.index:
            connection.executemany(index_sql[kind], [(pk, *values[1:]) for values in rows])
    return pks


@cache
def _sql() -> tuple[str, str, dict[str, str]]:
    resource, history, index = _statements()
    return resource.sql, history.sql, {kind: insert.sql for kind, insert in index.items()}


async def insert_new(
    connection: AsyncConnection,
    items: Sequence[tuple[StoredVersion, dict[str, Any]]],
    history: Callable[[StoredVersion, int], dict[str, Any]],
    created_by: str | None,
) -> dict[tuple[str, str], int]:
    """Store new resources (version 1) with their history and index rows, skipping any whose id is
    taken: version_writes.insert_new on SQLite. `history(version, pk)` gives a history row's values."""
    resource_insert, history_insert, index_inserts = _statements()
    batch = []
    for version, resource in items:
        current = {"resource_type": version.resource_type, "id": version.id, "version_id": 1,
                   "last_updated": version.last_updated, "deleted": False, "content": version.content,
                   "created_by": created_by}
        index = [
            (kind, [index_inserts[kind].values(row) for row in rows])
            for kind, rows in index_rows(0, version.resource_type, resource).items()
            if rows
        ]
        batch.append(_New(resource_insert.values(current), history_insert.values(history(version, 0)), index))
    raw = await raw_connection(connection)
    adapted: Any = raw.dbapi_connection
    async with adapted._execute_mutex:  # as a cursor would: one statement at a time per connection
        driver = adapted._connection
        try:
            if getattr(adapted, "inline", False):  # the writer's turn (storage.sqlite_driver.running_inline)
                pks: list[int | None] = _insert_all(driver._conn, batch)
            else:
                pks = await driver._execute(_insert_all, driver._conn, batch)
        except sqlite3.Error as error:
            # As SQLAlchemy would raise it: the edge tells a busy database or a spent time budget
            # (503) from a failure by the DBAPIError's type and message (api.errors).
            raise DBAPIError.instance(resource_insert.sql, None, error, sqlite3.Error, hide_parameters=True,
                                      dialect=connection.dialect) from error
    return {(v.resource_type, v.id): pk for (v, _), pk in zip(items, pks, strict=True) if pk is not None}
