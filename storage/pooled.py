"""The pooled DBAPI connection under one of SQLAlchemy's async connections, reached without a greenlet.

`AsyncConnection.get_raw_connection()` runs a plain attribute read in a greenlet of its own (~10 us
of the event loop's thread, measured): a read by id on SQLite asked for it twice, and every fixed
statement on PostgreSQL (storage.driver_sql) once. An open connection already holds it; only a
closed or invalidated one (a lost PostgreSQL connection, which SQLAlchemy may reconnect) goes the
awaited way.
"""

from __future__ import annotations

from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import PoolProxiedConnection


def held(connection: AsyncConnection) -> PoolProxiedConnection | None:
    """The pooled connection an open `connection` holds; None when it is closed or invalidated."""
    sync = connection.sync_connection
    if sync is None or sync.closed or sync.invalidated:
        return None
    return sync.connection


async def raw_connection(connection: AsyncConnection) -> PoolProxiedConnection:
    pooled = held(connection)
    return pooled if pooled is not None else await connection.get_raw_connection()


async def dbapi_connection(connection: AsyncConnection) -> DBAPIConnection | None:
    """The driver's adapted connection (SQLAlchemy's adapter of aiosqlite or asyncpg)."""
    return (await raw_connection(connection)).dbapi_connection
