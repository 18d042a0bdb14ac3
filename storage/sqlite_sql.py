"""Fixed SQLite statements, compiled once by SQLAlchemy and run on the sqlite3 connection itself.

A read by id cost ~200 us of the event loop's thread through SQLAlchemy's async connection (a
greenlet per call, the statement cache, the execution context, the result's metadata) for a SQLite
index probe of ~5 us (measured in one process, bench/RESULTS.md session 14). Where a statement
already runs on the loop's thread (a writer in its turn, a read by id: storage.sqlite_driver's
running_inline) and its text is fixed, it runs here instead: SQLAlchemy still writes the SQL and
converts the values both ways, with its dialect's bind and result processors (the functions its own
execution calls), so both paths give the same rows (tests/storage/test_current_reads.py). The
write path's inserts (storage.sqlite_writes) convert their values the same way.

A statement whose text depends on its values (an expanding IN list) has no fixed form and keeps
SQLAlchemy's execution.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import time_budget
from storage.pooled import held
from storage.sqlite_driver import StoppableConnection

Processor = Callable[[Any], Any] | None
DIALECT = sqlite.dialect()


def converted(values: Iterable[Any], processors: Sequence[Processor]) -> tuple[Any, ...]:
    """`values` as SQLAlchemy's type processors convert them; None stays None."""
    return tuple(value if process is None or value is None else process(value)
                 for value, process in zip(values, processors, strict=True))


@dataclass(frozen=True, slots=True)
class SqliteStatement:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order of the `?` placeholders
    binds: tuple[Processor, ...]
    fixed: Mapping[str, Any]  # values SQLAlchemy bound itself (the OFFSET 0 it writes after a LIMIT)
    columns: tuple[str, ...]
    results: tuple[Processor, ...]

    @classmethod
    def of(cls, statement: Select[Any]) -> SqliteStatement | None:
        """`statement` compiled for SQLite; None when its text depends on its values."""
        compiled = statement.compile(dialect=DIALECT)
        if compiled.post_compile_params or compiled.literal_execute_params or compiled.positiontup is None:
            return None
        names = tuple(compiled.positiontup)
        binds = tuple(compiled.binds[name].type.dialect_impl(DIALECT).bind_processor(DIALECT) for name in names)
        selected = list(statement.selected_columns)
        columns = tuple(column.key for column in selected if column.key is not None)
        if len(columns) != len(selected):
            return None  # a column without a name: its rows could not be read by name
        results = tuple(column.type.dialect_impl(DIALECT).result_processor(DIALECT, None) for column in selected)
        fixed = {name: compiled.binds[name].effective_value for name in names if not compiled.binds[name].required}
        return cls(compiled.string, names, binds, fixed, columns, results)

    def rows(self, connection: sqlite3.Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Each row as {column: value}. sqlite3's own errors, as SQLAlchemy's cursor would let them out."""
        values = (params[name] if name in params else self.fixed[name] for name in self.names)
        cursor = connection.execute(self.sql, converted(values, self.binds))
        try:
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        return [dict(zip(self.columns, converted(row, self.results), strict=True)) for row in fetched]


def rows_here(connection: AsyncConnection, statement: SqliteStatement | None,
              params: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """`statement`'s rows, run on the sqlite3 connection under `connection` while its statements run
    on this thread (a writer in its turn, a key lookup: storage.sqlite_driver.running_inline); None
    elsewhere, for a statement without a fixed form, and once a read is stopped (SQLAlchemy's cursor
    then fails it as stopped): SQLAlchemy runs it. Errors come out as SQLAlchemy's would (api.errors
    answers a spent budget or a busy database with 503)."""
    if statement is None:
        return None
    raw = _inline(connection)
    if raw is None:
        return None
    try:
        return statement.rows(raw, params)
    except sqlite3.Error as error:
        raise DBAPIError.instance(statement.sql, None, error, sqlite3.Error, hide_parameters=True,
                                  dialect=connection.dialect) from error


def _inline(connection: AsyncConnection) -> sqlite3.Connection | None:
    pooled = held(connection)
    adapted = pooled.dbapi_connection if pooled is not None else None
    if pooled is None or not isinstance(adapted, StoppableConnection) or not adapted.inline or adapted.stopped:
        return None
    if not connection.in_transaction():
        # An autocommit read's statement is its own transaction: it gets the time budget SQLAlchemy's
        # begin would have started (storage.database's _on_begin).
        time_budget.restart(pooled)
    return adapted.sqlite
