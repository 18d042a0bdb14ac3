"""Engines and transactions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storage import clock


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        return _sqlite_engine(url)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it costs two round trips per request; a connection the server dropped is
        # invalidated by SQLAlchemy on the first error and the pool replaces it.
        pool_recycle=1800,
        # asyncpg's per-connection prepared-statement cache is what makes repeated queries cheap.
        # Custom plans: asyncpg prepares every statement, and PostgreSQL's generic plans ignore the
        # values that make a search selective; parallel workers cost more to start than they save here.
        connect_args={
            "server_settings": {
                "application_name": "puente",
                "plan_cache_mode": "force_custom_plan",
                "max_parallel_workers_per_gather": "0",
            }
        }
        if "asyncpg" in url
        else {},
    )


def _sqlite_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(
        url,
        connect_args={"timeout": 30},
        # Pooled: opening the file and setting the pragmas on every request costs more than the query.
        pool_size=5,
        max_overflow=10,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide between BEGIN and BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the write lock up front: two writers that both read first would otherwise
        # deadlock on the upgrade and one would fail with "database is locked".
        immediate = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@asynccontextmanager
async def transaction(engine: AsyncEngine, *, write: bool) -> AsyncIterator[AsyncConnection]:
    """One database transaction: committed when the block ends, rolled back on any exception.

    A read on PostgreSQL runs in autocommit instead: under READ COMMITTED a read-only transaction
    gives no stronger guarantee (each statement has its own snapshot either way), and BEGIN and
    COMMIT would be two more round trips on the hottest path.
    """
    if not write and engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection
        return
    bound = engine.execution_options(write=True) if write else engine
    async with bound.begin() as connection:
        try:
            if write and engine.dialect.name == "postgresql":
                # The write's lease and clock (storage.clock), in the round trip that also sets its
                # plan cache mode: searches keep custom plans (see create_engine), but a write's
                # statements plan the same whatever the values, and planning them every time was
                # ~1 ms each; "auto" keeps a generic plan once it costs no more than the custom ones.
                # (SQLite opens its clock on the first stamp, under the write lock it already holds.)
                await clock.open_write(connection)
            yield connection
        finally:
            clock.close_write(connection)
