"""The storage tests' way in: an empty database, and a repository in a transaction of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import LOCAL_EXPLORER
from storage.database import create_engine, transaction
from storage.repository import FhirRepository
from storage.search import find_matches
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
            yield FhirRepository(connection, LOCAL_EXPLORER, search=find_matches)

    return open_repository
