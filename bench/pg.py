"""Fresh PostgreSQL databases for a run (asyncpg, local trust auth by default)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def dsn_for(admin_dsn: str, database: str) -> str:
    """`admin_dsn` with its database replaced (plain libpq form, for asyncpg)."""
    parts = urlsplit(admin_dsn.replace("postgresql+asyncpg://", "postgresql://"))
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _reachable(admin_dsn: str) -> str | None:
    try:
        conn = await asyncpg.connect(admin_dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        return None if await conn.fetchval("SELECT 1") == 1 else "SELECT 1 failed"
    finally:
        await conn.close()


def unreachable_reason(admin_dsn: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    return asyncio.run(_reachable(admin_dsn))


async def _recreate(admin_dsn: str, database: str, *, create: bool = True) -> None:
    if not database.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {database!r}")
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


def drop(admin_dsn: str, database: str) -> None:
    """Drop `database` (a run's scratch database: the machine is shared)."""
    asyncio.run(_recreate(admin_dsn, database, create=False))


def recreate(admin_dsn: str, database: str) -> str:
    """Drop and create `database`; return its DSN."""
    asyncio.run(_recreate(admin_dsn, database))
    return dsn_for(admin_dsn, database)


async def _version(admin_dsn: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def server_version(admin_dsn: str) -> str:
    return asyncio.run(_version(admin_dsn))
