"""Small SQL building blocks shared by the parameter-type modules (both dialects)."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Numeric,
    String,
    Table,
    and_,
    false,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from storage.search_rows import iso

Columns = Mapping[str, ColumnElement[Any]]
"""The value columns a condition is written against: an index table's `.c`, or a composite's JSON fields."""


@functools.cache
def _alias(table: Table, n: int) -> FromClause:
    return table.alias(f"{table.name.removeprefix('search_')}_{n}")


class Aliases:
    """Hands out a distinct alias of a table for each use within one statement.

    Aliases are made once per (table, n) and reused by every statement: building their column
    collections is the costliest part of composing a search, and equal SQL text lets SQLAlchemy's
    compiled cache and asyncpg's prepared statements serve the next search of the same shape.
    """

    def __init__(self) -> None:
        self._used: Counter[str] = Counter()

    def __call__(self, table: Table) -> FromClause:
        n = self._used[table.name]
        self._used[table.name] += 1
        return _alias(table, n)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def starts_with(column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    # The pattern is one bound value ending in '%', so PostgreSQL plans it as an index range.
    return column.like(escape_like(text) + "%", escape="\\")


def contains(column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    return column.like("%" + escape_like(text) + "%", escape="\\")


def all_of(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    if not conditions:
        return true()
    return conditions[0] if len(conditions) == 1 else and_(*conditions)


def any_of(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    if not conditions:
        return false()
    return conditions[0] if len(conditions) == 1 else or_(*conditions)


def one_or_many(column: ColumnElement[Any], values: tuple[str, ...] | list[str]) -> ColumnElement[bool]:
    return column == values[0] if len(values) == 1 else column.in_(list(values))


def fenced(table: FromClause, *conditions: Any, columns: Sequence[Any] = (), name: str | None = None) -> Any:
    """`table`'s rows meeting `conditions` (a key correlated to an outer row: a candidate's pk, a
    target), as a subquery the planner runs as written (OFFSET 0), so a probe by that key stays a
    probe. Without statistics PostgreSQL otherwise replaced a candidate's few index rows with a walk of
    a value index's whole (resource_type, param, ...) range, once per candidate."""
    statement = select(*(columns or [table])).where(*conditions).correlate_except(table)
    return statement.offset(0).subquery(name)


class unindexed(FunctionElement[Any]):
    """`column` as a value SQLite's planner will not look up in an index (`+column`); itself elsewhere.

    For conditions every candidate meets when another clause names the candidates (the searched type
    and the watermark: storage.search.engine). SQLite, which has no statistics here, took
    `resource_type = ? AND last_updated <= ?` for a selective range and walked every resource of the
    type instead of the few a child's reference rows name."""

    inherit_cache = True
    name = "unindexed"

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: Any, **kw: Any) -> str:
    [column] = element.clauses
    return f"+{compiler.process(column, **kw)}"


@compiles(unindexed)
def _unindexed_default(element: unindexed, compiler: Any, **kw: Any) -> str:
    [column] = element.clauses
    return str(compiler.process(column, **kw))


class json_field(FunctionElement[str]):
    """`component[index].key` of a JSON array of objects stored as text, as text (NULL when absent)."""

    type = String()
    inherit_cache = True
    name = "json_field"

    def __init__(self, column: ColumnElement[Any], index: int, key: str) -> None:
        # index and key come from our code, never from a request: literal SQL is safe and keeps the cache key
        super().__init__(column, literal_column(str(int(index))), literal_column(key))


@compiles(json_field, "postgresql")
def _json_field_pg(element: json_field, compiler: Any, **kw: Any) -> str:
    column, index, key = list(element.clauses)
    return f"(CAST({compiler.process(column, **kw)} AS JSONB) -> {index.name} ->> '{key.name}')"


@compiles(json_field)
def _json_field_default(element: json_field, compiler: Any, **kw: Any) -> str:
    column, index, key = list(element.clauses)
    return f"json_extract({compiler.process(column, **kw)}, '$[{index.name}].{key.name}')"


class IsoInstant(TypeDecorator[datetime]):
    """An instant kept as `storage.search_rows.iso` text (composite components): binds datetimes as that text."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return iso(value) if isinstance(value, datetime) else value


def json_text(column: ColumnElement[Any], index: int, key: str) -> ColumnElement[Any]:
    return json_field(column, index, key)


def json_number(column: ColumnElement[Any], index: int, key: str) -> ColumnElement[Any]:
    from sqlalchemy import cast

    return cast(json_field(column, index, key), Numeric())


def json_instant(column: ColumnElement[Any], index: int, key: str) -> ColumnElement[Any]:
    return type_coerce(json_field(column, index, key), IsoInstant())


class unindexed_text(unindexed):
    """A text `column` as a value no index serves, on PostgreSQL too (`column || ''`).

    For a condition that must only filter what another one found: an access rule's step from known
    resources to what they reference (storage.access._targets). Without statistics PostgreSQL
    walked every reference to the type, 3,000 rows for one CHW's CareTeams, instead of the few
    rows of the resources in hand."""

    inherit_cache = True
    name = "unindexed_text"


@compiles(unindexed_text, "postgresql")
def _unindexed_text_postgresql(element: unindexed_text, compiler: Any, **kw: Any) -> str:
    [column] = element.clauses
    return f"({compiler.process(column, **kw)} || '')"
