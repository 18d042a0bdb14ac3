"""The storage tests' way in: an empty database, and a repository in a transaction of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest_asyncio
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import LOCAL_EXPLORER
from storage.database import create_engine, transaction
from storage.repository import FhirRepository
from tests.fixtures.databases import empty_all_tables

OpenRepository = Callable[..., AbstractAsyncContextManager[FhirRepository]]


@pytest_asyncio.fixture(loop_scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test database, emptied first."""
    await empty_all_tables(database_url)
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def repository_in(engine: AsyncEngine) -> OpenRepository:
    """`async with repository_in(write=True) as repository:` a repository in one transaction."""

    @asynccontextmanager
    async def open_repository(*, write: bool) -> AsyncIterator[FhirRepository]:
        async with transaction(engine, write=write) as connection:
            yield FhirRepository(connection, LOCAL_EXPLORER)

    return open_repository


@asynccontextmanager
async def statements_sent(engine: AsyncEngine, repository: FhirRepository) -> AsyncIterator[list[str]]:
    """Every statement the repository's connection sends while the block runs: those through
    SQLAlchemy, and the reads that go to the driver directly (storage.driver_sql on PostgreSQL,
    storage.sqlite_sql on SQLite, read from sqlite3's own trace of the connection, parameters
    written in). (SQLite's prebuilt inserts, storage.sqlite_writes, are not counted.)"""
    seen: list[str] = []
    inside_sqlalchemy = False

    def through_sqlalchemy(conn: object, cursor: object, statement: str, *_: object) -> None:
        nonlocal inside_sqlalchemy
        inside_sqlalchemy = True
        seen.append(statement)

    def after_sqlalchemy(*_: object) -> None:
        nonlocal inside_sqlalchemy
        inside_sqlalchemy = False

    def through_driver(query: object) -> None:
        seen.append(query.query)  # type: ignore[attr-defined]

    def through_sqlite(statement: str) -> None:
        if not inside_sqlalchemy and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    raw = await repository.connection.get_raw_connection()
    sqlite = None
    if engine.dialect.name == "postgresql":
        driver = raw.driver_connection
        assert driver is not None
        driver.add_query_logger(through_driver)
    else:
        sqlite = raw.dbapi_connection.sqlite  # type: ignore[union-attr]
        sqlite.set_trace_callback(through_sqlite)
    event.listen(engine.sync_engine, "before_cursor_execute", through_sqlalchemy)
    event.listen(engine.sync_engine, "after_cursor_execute", after_sqlalchemy)
    try:
        yield seen
    finally:
        await asyncio.sleep(0)  # asyncpg calls query loggers soon after each query, not during it
        event.remove(engine.sync_engine, "before_cursor_execute", through_sqlalchemy)
        event.remove(engine.sync_engine, "after_cursor_execute", after_sqlalchemy)
        if sqlite is not None:
            sqlite.set_trace_callback(None)
        else:
            driver.remove_query_logger(through_driver)
