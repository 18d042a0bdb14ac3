"""The write path's fixed PostgreSQL statements, run on asyncpg directly, inside SQLAlchemy's transaction.

SQLAlchemy's execution layer (statement cache lookup, parameter processing, result metadata) cost
~150 us of CPU per statement here, more than asyncpg's whole round trip (~90 us). The write path's
big statements are fixed text built once (version_writes, the advisory locks), so they skip it: the
same connection, the same transaction, errors still raised as SQLAlchemy's `DBAPIError` (a deadlock
is still a 503 to retry). Everything dynamic (searches, reads with access rules) stays on
SQLAlchemy Core.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Result, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.pg_connection import PlannedConnection
from storage.pooled import held, raw_connection

# `:name` placeholders, not PostgreSQL's `::type` casts (the statements use CAST(... AS ...) anyway).
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
# connection.info: plain reads sent now do not begin the transaction (`reads_before_begin`).
_READS_BEFORE_BEGIN = "puente.reads_before_begin"


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement written with `:name` placeholders, rendered once with asyncpg's `$n` ones."""

    sql: str
    names: tuple[str, ...]
    # When it is the first statement of its transaction, the BEGIN before it switches the
    # transaction to generic plans (storage.pg_connection): a write statement of fixed shape.
    opens_generic: bool = False
    # A SELECT that locks nothing: it may run before its transaction's BEGIN (`reads_before_begin`).
    plain_read: bool = False

    @classmethod
    def from_named(cls, named_sql: str, *, opens_generic: bool = False) -> DriverStatement:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        sql = _PLACEHOLDER.sub(number, named_sql)
        text = sql.lstrip().upper()
        plain_read = text.startswith("SELECT") and " FOR UPDATE" not in text and "PG_ADVISORY" not in text
        return cls(sql, tuple(names), opens_generic, plain_read)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]


async def fetch(
    connection: AsyncConnection, statement: DriverStatement, params: Mapping[str, Any]
) -> Sequence[asyncpg.Record]:
    """Run `statement` on the driver connection under `connection`, in its transaction."""
    raw = await raw_connection(connection)
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    if (not driver.is_in_transaction() and _begins_lazily(connection)
            and not (statement.plain_read and connection.info.get(_READS_BEFORE_BEGIN))):
        if statement.opens_generic and isinstance(driver, PlannedConnection):
            driver.plan_next_transaction_generically()
        await _begin(raw.dbapi_connection)
    return await _fetch_on(driver, statement, params)


async def _fetch_on(
    driver: asyncpg.Connection, statement: DriverStatement, params: Mapping[str, Any]
) -> Sequence[asyncpg.Record]:
    try:
        return await driver.fetch(statement.sql, *statement.arguments(params))
    except asyncpg.PostgresError as exc:
        # Parameters hidden: they are patients' records, which do not belong in logs.
        raise DBAPIError(statement.sql, dict(params), exc, hide_parameters=True) from exc


@contextmanager
def reads_before_begin(connection: AsyncConnection) -> Iterator[None]:
    """While the block runs, a plain read (`DriverStatement.plain_read`) sent on `connection` does
    not begin its transaction: it runs on its own, in READ COMMITTED its own snapshot as it would
    have had inside. A single create's enrichers read so (a hemoglobin's Patient), and the create
    may then commit on its own statement (`fetch_alone`). Anything else sent begins the transaction
    as ever, and the create then takes the transaction's path."""
    connection.info[_READS_BEFORE_BEGIN] = True
    try:
        yield
    finally:
        connection.info.pop(_READS_BEFORE_BEGIN, None)


async def read(connection: AsyncConnection, statement: Select[Any]) -> Result[Any]:
    """`connection.execute(statement)`, a SELECT that locks nothing; inside `reads_before_begin`
    (PostgreSQL), sent before the transaction's BEGIN as a plain driver read is: SQLAlchemy's
    adapter, which would otherwise send its BEGIN first, runs it in autocommit, on its own."""
    if not connection.info.get(_READS_BEFORE_BEGIN) or statement._for_update_arg is not None:
        return await connection.execute(statement)
    adapter = (await raw_connection(connection)).dbapi_connection
    if getattr(adapter, "_transaction", True) is not None or not _begins_lazily(connection):
        return await connection.execute(statement)
    adapter.autocommit = True  # type: ignore[union-attr]
    try:
        return await connection.execute(statement)
    finally:
        adapter.autocommit = False  # type: ignore[union-attr]  # back to the connection's own level


async def fetch_alone(
    connection: AsyncConnection, statement: DriverStatement, params: Mapping[str, Any]
) -> Sequence[asyncpg.Record] | None:
    """Run `statement` on its own, committed by PostgreSQL as it ends (no BEGIN, no COMMIT: one
    round trip), planned generically (storage.pg_connection); None when the transaction under
    `connection` has begun already (run it there instead). If it wrote, say so (`committed_alone`)."""
    raw = await raw_connection(connection)
    driver = raw.driver_connection
    if not isinstance(driver, PlannedConnection) or driver.is_in_transaction() or not _begins_lazily(connection):
        return None
    await driver.plan_session(generic=True)  # once per connection: it stays so while it serves writes
    return await _fetch_on(driver, statement, params)


def committed_alone(connection: AsyncConnection) -> None:
    """A statement that wrote has committed on its own in the transaction block under `connection`:
    nothing may follow it there (it would commit apart), so the connection refuses a BEGIN until
    the block ends (`forget_plan`)."""
    driver = _planned(connection)
    if driver is not None:
        driver.committed_alone = True


def plan_generically(connection: AsyncConnection) -> None:
    """The transaction under `connection`, when it has sent nothing yet, plans generically from its
    BEGIN on (storage.pg_connection), whatever statement sends it: a single create's, whose insert
    may follow a read of its own (a hemoglobin's interpretation reads the child's Patient first,
    a key lookup that plans the same either way). Its insert was otherwise planned for its values
    on every create: PostgreSQL's CPU per hemoglobin create was 2.46-2.51 ms under 32 clients, 1.69-1.90
    ms with this and the BEGIN fixed (storage.pg_connection; bench/RESULTS.md, session 17)."""
    driver = _planned(connection)
    if driver is not None and not driver.is_in_transaction() and _begins_lazily(connection):
        driver.plan_next_transaction_generically()


def forget_plan(connection: AsyncConnection) -> None:
    """The transaction under `connection` has ended: a `plan_generically` it never began with (it
    failed before its first statement) is not left to the connection's next transaction."""
    driver = _planned(connection)
    if driver is not None:
        driver.forget_generic_plan()


def _planned(connection: AsyncConnection) -> PlannedConnection | None:
    """The PostgreSQL driver connection under an open `connection`, when it is ours."""
    pooled = held(connection)
    driver = None if pooled is None else pooled.driver_connection
    return driver if isinstance(driver, PlannedConnection) else None


async def _begin(adapter: Any) -> None:
    """Send the BEGIN that SQLAlchemy's asyncpg adapter sends before a transaction's first statement,
    or this statement would commit on its own. Its own method, under its own lock, as its cursor
    does: running a `SELECT 1` through SQLAlchemy to the same end cost a round trip per write."""
    async with adapter._execute_mutex:
        if adapter._transaction is None:
            await adapter._start_transaction()


def _begins_lazily(connection: AsyncConnection) -> bool:
    """In a transaction whose BEGIN SQLAlchemy has yet to send (an AUTOCOMMIT connection, where reads
    run, reports a transaction too but never begins one)."""
    autocommit = connection.sync_connection is not None and (
        connection.sync_connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    )
    return connection.in_transaction() and not autocommit
